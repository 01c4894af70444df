//! [`VecMap`]: a map on a sorted vector, for the core's small tables.
//!
//! The core's tables are small (the channels of one connection, the `subscribe` frames awaiting
//! an answer, the acknowledged sends in flight), so a binary search over a vector is as quick as
//! hashing, and it keeps hashbrown, SipHash and the B-tree out of the browser build, where their
//! code was a sixth of the module (docs/benchmarks.md). Iteration is in key order.

use std::borrow::Borrow;

/// A map whose entries are kept sorted by key in one vector.
#[derive(Debug, Clone)]
pub(crate) struct VecMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> VecMap<K, V> {
    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value of `key`.
    pub(crate) fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|at| &self.entries[at].1)
    }

    /// The value of `key`, to change.
    pub(crate) fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|at| &mut self.entries[at].1)
    }

    /// The value of `key`, inserted from `value` if there was none.
    pub(crate) fn get_or_insert_with(&mut self, key: K, value: impl FnOnce() -> V) -> &mut V {
        let at = match self.find(&key) {
            Ok(at) => at,
            Err(at) => {
                self.entries.insert(at, (key, value()));
                at
            }
        };
        &mut self.entries[at].1
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.entries.insert(at, (key, value));
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub(crate) fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|at| self.entries.remove(at).1)
    }

    /// Keeps the entries for which `keep` is true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    /// Removes every entry.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_map() {
        let mut map: VecMap<String, u32> = VecMap::default();
        assert_eq!(map.insert("b".into(), 2), None);
        assert_eq!(map.insert("a".into(), 1), None);
        assert_eq!(map.insert("c".into(), 3), None);
        assert_eq!(map.insert("b".into(), 20), Some(2));
        assert_eq!(map.get("b"), Some(&20));
        assert_eq!(map.get("z"), None);
        *map.get_mut("a").unwrap() += 10;
        assert_eq!(map.get("a"), Some(&11));
        *map.get_or_insert_with("d".into(), || 4) += 1;
        assert_eq!(*map.get_or_insert_with("d".into(), || 99), 5);
        assert_eq!(map.remove("c"), Some(3));
        assert_eq!(map.remove("c"), None);
        map.retain(|k, v| {
            *v += 1;
            k != "a"
        });
        let entries: Vec<_> = map.entries.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(entries, [("b", 21), ("d", 6)]);
        map.clear();
        assert_eq!(map.get("b"), None);
    }
}
