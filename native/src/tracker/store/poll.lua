-- Record one poll of a peer, only while the peer is still listed: its bitfield record (when the
-- poll learned one) and its poll entry ("<next poll unix>:<consecutive failures>"), backed off
-- after a failure as the in-memory poller does.
--
-- KEYS: seeders, leechers, peers, bits, fails, watched, due.
-- ARGV: member, bits record ('' = the poll failed), now, step (seconds between polls).
-- Reply: {0} when the peer is gone, else {1, watched, peer record, last seen, failures}.
local S, L, P, B, F, W, Z = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local me, rec = ARGV[1], ARGV[2]
local now, step = tonumber(ARGV[3]), tonumber(ARGV[4])
local seen = redis.call('ZSCORE', S, me) or redis.call('ZSCORE', L, me)
if not seen then
  redis.call('ZREM', Z, me)
  return {0}
end
local fails = 0
local entry = redis.call('HGET', F, me)
if entry then
  fails = tonumber(string.match(entry, ':(%d+)$') or '0')
end
local next_poll
if rec == '' then
  fails = math.min(fails + 1, 255)
  local base = math.max(step, 10)
  next_poll = now + math.min(math.max(base * 2 ^ (math.min(fails, 6) - 1), base), math.max(3600, base))
else
  fails = 0
  next_poll = now + step
  redis.call('HSET', B, me, rec)
end
redis.call('HSET', F, me, string.format('%d:%d', next_poll, fails))
redis.call('ZADD', Z, next_poll, me)
return {1, redis.call('EXISTS', W), redis.call('HGET', P, me) or '', tonumber(seen), fails}
