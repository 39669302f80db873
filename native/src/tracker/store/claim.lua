-- Claim, in one step, this node's due peers of one torrent (all keys in its slot): a member
-- still listed whose poll entry ("<next poll unix>:<consecutive failures>") is due at `now` gets
-- its next poll pushed to now + step, its failure count kept, and is returned. Two nodes that
-- both take a peer for theirs (their views of the live nodes differ while one joins or leaves)
-- cannot both claim it: the second finds its next poll in the future.
--
-- KEYS: fails, seeders, leechers.
-- ARGV: now, step, member1, member2, ...
-- Reply: the members claimed.
local F, S, L = KEYS[1], KEYS[2], KEYS[3]
local now, step = tonumber(ARGV[1]), tonumber(ARGV[2])
local claimed = {}
for i = 3, #ARGV do
  local m = ARGV[i]
  if redis.call('ZSCORE', S, m) or redis.call('ZSCORE', L, m) then
    local entry = redis.call('HGET', F, m)
    local next_poll, fails = 0, '0'
    if entry then
      next_poll = tonumber(string.match(entry, '^(%d+)') or '0')
      fails = string.match(entry, ':(%d+)$') or '0'
    end
    if next_poll <= now then
      redis.call('HSET', F, m, string.format('%d:%s', now + step, fails))
      claimed[#claimed + 1] = m
    end
  end
end
return claimed
