//! The server under test.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::BenchError;

/// A server on loopback, reached at a `ws://` URL.
///
/// ```
/// use cerebrum_bench::Target;
/// let target = Target::new("ws://127.0.0.1:9001/ws")?.with_pid(Some(4242));
/// assert_eq!(target.addr().port(), 9001);
/// assert!(Target::new("ws://192.168.1.10:9001/ws").is_err()); // loopback only
/// # Ok::<(), cerebrum_bench::BenchError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Target {
    url: String,
    addr: SocketAddr,
    pid: Option<u32>,
    source_addresses: u8,
    /// Further nodes of the same cluster (URL, address): connections are spread round-robin
    /// over the first URL and these.
    others: Vec<(String, SocketAddr)>,
    /// Whether clients offer permessage-deflate.
    compression: bool,
}

impl Target {
    /// Parses `ws://HOST:PORT/PATH`, where HOST is a loopback IPv4 address or `localhost`.
    pub fn new(url: &str) -> Result<Self, BenchError> {
        let invalid = |reason| BenchError::InvalidTarget {
            url: url.to_owned(),
            reason,
        };
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| invalid("only ws:// URLs are supported"))?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| invalid("the URL needs a port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| invalid("the port is not a number"))?;
        let ip = if host == "localhost" {
            Ipv4Addr::LOCALHOST
        } else {
            host.parse::<Ipv4Addr>()
                .map_err(|_| invalid("the host must be a loopback IPv4 address"))?
        };
        if !ip.is_loopback() {
            return Err(invalid(
                "benchmarks only target loopback addresses (127.0.0.0/8)",
            ));
        }
        Ok(Self {
            url: url.to_owned(),
            addr: SocketAddr::new(IpAddr::V4(ip), port),
            pid: None,
            source_addresses: 8,
            others: Vec::new(),
            compression: false,
        })
    }

    /// Adds further nodes of the same cluster (several `cerebrum serve --redis` processes):
    /// client `i` connects to node `i mod (1 + others)`, the first URL being node 0.
    ///
    /// ```
    /// use cerebrum_bench::Target;
    /// let target = Target::new("ws://127.0.0.1:8080/ws")?
    ///     .with_nodes(&["ws://127.0.0.1:8081/ws".to_owned()])?;
    /// assert_eq!(target.nodes(), 2);
    /// # Ok::<(), cerebrum_bench::BenchError>(())
    /// ```
    pub fn with_nodes(mut self, urls: &[String]) -> Result<Self, BenchError> {
        for url in urls {
            let node = Self::new(url)?;
            self.others.push((node.url, node.addr));
        }
        Ok(self)
    }

    /// How many server nodes the clients are spread over.
    #[must_use]
    pub fn nodes(&self) -> usize {
        1 + self.others.len()
    }

    /// The URL and address client number `index` connects to.
    pub(crate) fn node_for(&self, index: usize) -> (&str, SocketAddr) {
        match index % self.nodes() {
            0 => (&self.url, self.addr),
            n => {
                let (url, addr) = &self.others[n - 1];
                (url, *addr)
            }
        }
    }

    /// The server's pid, to read its RSS and CPU time from `/proc`.
    #[must_use]
    pub fn with_pid(mut self, pid: Option<u32>) -> Self {
        self.pid = pid;
        self
    }

    /// How many loopback source addresses (127.0.0.2 upwards) client sockets are spread over
    /// (1 = the kernel's choice on 127.0.0.1).
    #[must_use]
    pub fn with_source_addresses(mut self, count: u8) -> Self {
        self.source_addresses = count.clamp(1, 250);
        self
    }

    /// Whether clients offer permessage-deflate (RFC 7692) in their handshakes; a server run
    /// with `--compression` then sends them large frames compressed.
    ///
    /// ```
    /// use cerebrum_bench::Target;
    /// let target = Target::new("ws://127.0.0.1:9001/ws")?.with_compression(true);
    /// assert!(target.compression());
    /// # Ok::<(), cerebrum_bench::BenchError>(())
    /// ```
    #[must_use]
    pub fn with_compression(mut self, compression: bool) -> Self {
        self.compression = compression;
        self
    }

    /// Whether clients offer permessage-deflate.
    #[must_use]
    pub fn compression(&self) -> bool {
        self.compression
    }

    /// The URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The socket address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's pid, if given.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The source address of client number `index`.
    pub(crate) fn source_for(&self, index: usize) -> Option<Ipv4Addr> {
        if self.source_addresses <= 1 {
            return None;
        }
        let offset = (index % usize::from(self.source_addresses)) as u8;
        Some(Ipv4Addr::new(127, 0, 0, 2 + offset))
    }
}
