-- Claim, in one step, this node's due peers of one torrent (all keys in its slot): a member
-- still listed, seen since `deadline`, whose poll entry ("<next poll unix>:<consecutive
-- failures>") is due at `now` gets its next poll pushed to now + step (in the entry and in the
-- due set), its failure count kept, and is returned. Two nodes that both take a peer for theirs
-- (their views of the live nodes differ while one joins or leaves) cannot both claim it: the
-- second finds its next poll in the future. A member no longer listed, or silent past the
-- deadline, leaves the due set (the announce that trims it drops the rest).
--
-- KEYS: fails, seeders, leechers, due, bits.
-- ARGV: now, step, deadline, member1, member2, ...
-- Reply: {earliest next poll left in the due set ('' when empty), member1, seed1 (1/0),
-- bits record1 ('' = none), member2, ...} for the members claimed.
local F, S, L, Z, B = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, step, deadline = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local reply = {''}
for i = 4, #ARGV do
  local m = ARGV[i]
  local seed = redis.call('ZSCORE', S, m)
  local seen = seed or redis.call('ZSCORE', L, m)
  if not seen or tonumber(seen) < deadline then
    redis.call('ZREM', Z, m)
  else
    local entry = redis.call('HGET', F, m)
    local next_poll, fails = 0, '0'
    if entry then
      next_poll = tonumber(string.match(entry, '^(%d+)') or '0')
      fails = string.match(entry, ':(%d+)$') or '0'
    end
    if next_poll <= now then
      redis.call('HSET', F, m, string.format('%d:%s', now + step, fails))
      redis.call('ZADD', Z, now + step, m)
      reply[#reply + 1] = m
      reply[#reply + 1] = seed and 1 or 0
      reply[#reply + 1] = redis.call('HGET', B, m) or ''
    else
      -- Claimed elsewhere meanwhile, or a set written before this index: the entry decides.
      redis.call('ZADD', Z, next_poll, m)
    end
  end
end
local first = redis.call('ZRANGE', Z, 0, 0, 'WITHSCORES')
if #first == 2 then
  reply[1] = first[2]
end
return reply
