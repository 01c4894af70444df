//! The Lua scripts that make each multi-key step atomic inside Redis.
//!
//! Keys of channel `C` share the hash tag `{C}` so that they live in one slot of a Redis
//! Cluster: `cerebrum:{C}:meta` (hash: `epoch`, `offset`), `cerebrum:{C}:hist` (stream of the
//! recent publications, entry id `OFFSET-1`, fields `t` = unix ms and `f` = the frame) and
//! `cerebrum:{C}:presence` (hash: user id → presence entry JSON).

use redis::Script;

/// Gives a publication the channel's next offset, keeps it in the history stream and publishes
/// it, all in one step, so that pub/sub order is offset order on every node.
///
/// Idempotent: a message id appended to the channel within the dedupe window is not appended
/// again (a retry of a publication whose first attempt was in flight when its connection died,
/// on this node or another), and the answer's offset is 0.
///
/// KEYS: meta, hist, ids (sorted set: message id → when). ARGV: frame head, frame tail, history
/// size, TTL ms, pub/sub channel, a fresh epoch (used when the channel has none), publish
/// command, now ms, message id (`''`: none), dedupe window ms.
/// Returns `{offset, epoch}`. The pub/sub message is `EPOCH OFFSET FRAME`.
const APPEND: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[6]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
  redis.call('DEL', KEYS[2])
end
if ARGV[9] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', tonumber(ARGV[8]) - tonumber(ARGV[10]))
  if redis.call('ZSCORE', KEYS[3], ARGV[9]) then return {0, epoch} end
  redis.call('ZADD', KEYS[3], ARGV[8], ARGV[9])
  redis.call('PEXPIRE', KEYS[3], ARGV[10])
end
local off = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local frame = ARGV[1] .. off .. ARGV[2]
if tonumber(ARGV[3]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], off .. '-1', 't', ARGV[8], 'f', frame)
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call(ARGV[7], ARGV[5], epoch .. ' ' .. off .. ' ' .. frame)
return {off, epoch}
";

/// The channel's position and, when history reaches back to `since` in the same epoch, the
/// frames after it.
///
/// KEYS: meta, hist. ARGV: since offset (-1: none), since epoch, a fresh epoch, TTL ms,
/// history size, oldest acceptable `t` (now - TTL).
/// Returns `{last offset, epoch, recovered (0/1), frame...}`; the frames have offsets
/// `since + 1`, `since + 2`, ….
const REPLAY: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[3]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
  redis.call('DEL', KEYS[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local last = tonumber(redis.call('HGET', KEYS[1], 'offset') or '0')
local since = tonumber(ARGV[1])
if since < 0 or ARGV[2] ~= epoch or since > last then return {last, epoch, 0} end
if since == last then return {last, epoch, 1} end
if last - since > tonumber(ARGV[5]) then return {last, epoch, 0} end
local entries = redis.call('XRANGE', KEYS[2], (since + 1) .. '-1', '+')
if #entries == 0 then return {last, epoch, 0} end
local out = {last, epoch, 1}
for i, entry in ipairs(entries) do
  local id = tonumber(string.match(entry[1], '^(%d+)'))
  if id ~= since + i then return {last, epoch, 0} end
  local t, f = nil, nil
  local fields = entry[2]
  for j = 1, #fields, 2 do
    if fields[j] == 't' then t = tonumber(fields[j + 1]) end
    if fields[j] == 'f' then f = fields[j + 1] end
  end
  if t == nil or f == nil or t < tonumber(ARGV[6]) then return {last, epoch, 0} end
  out[#out + 1] = f
end
return out
";

/// Admits one more connection of a user when the live count over every node is below the
/// limit. The hash holds one field per node: `COUNT:EXPIRES_MS`.
///
/// KEYS: the user's connection hash. ARGV: node id, limit, now ms, field expiry ms, key TTL ms.
/// Returns 1 (admitted) or 0.
const USER_CONNECT: &str = r"
local now = tonumber(ARGV[3])
local total = 0
local mine = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local count, expires = string.match(all[i + 1], '^(%d+):(%d+)$')
  if count == nil or tonumber(expires) < now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    total = total + tonumber(count)
    if all[i] == ARGV[1] then mine = tonumber(count) end
  end
end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], (mine + 1) .. ':' .. ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
";

/// Claims a message id: `1` (first: the key now says `pending` for ARGV[1] ms), `0` (settled:
/// `done`), `2` (claimed by someone else and still pending).
///
/// KEYS: the dedupe key. ARGV: pending ms.
const CLAIM: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], 'pending', 'PX', ARGV[1])
  return 1
end
if v == 'done' then return 0 end
return 2
";

/// Removes a member from a presence hash when its entry joined at the given time (a newer
/// entry of the user, joined from another connection, stays).
///
/// KEYS: the presence hash. ARGV: user id, joined at (ms). Returns 1 when removed.
const PRESENCE_LEAVE: &str = r#"
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then return 0 end
if string.match(entry, '"joinedAt":(%d+)') ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
"#;

/// Removes the expired members of a presence hash and returns their user ids (only the caller
/// that removed a member gets it, so one node announces the leave).
///
/// KEYS: the presence hash. ARGV: now ms.
const PRESENCE_EXPIRE: &str = r#"
local now = tonumber(ARGV[1])
local gone = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local expires = tonumber(string.match(all[i + 1], '"expires":(%d+)'))
  if expires == nil or expires < now then
    redis.call('HDEL', KEYS[1], all[i])
    gone[#gone + 1] = all[i]
  end
end
return gone
"#;

/// The scripts, loaded once (EVALSHA with a fallback to EVAL, by the `redis` crate).
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) append: Script,
    pub(crate) replay: Script,
    pub(crate) user_connect: Script,
    pub(crate) presence_expire: Script,
    pub(crate) presence_leave: Script,
    pub(crate) claim: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            append: Script::new(APPEND),
            replay: Script::new(REPLAY),
            user_connect: Script::new(USER_CONNECT),
            presence_expire: Script::new(PRESENCE_EXPIRE),
            presence_leave: Script::new(PRESENCE_LEAVE),
            claim: Script::new(CLAIM),
        }
    }
}
