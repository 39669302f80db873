-- One announce against one torrent's keys (all in one hash slot): trim the torrent's expired
-- peers, store or remove the asker, count a completion, check a reported bitfield, and pick
-- peers at random for the reply.
--
-- KEYS: seeders, leechers, peers, bits, meta, done, watched, fails, due (see keys.rs).
-- ARGV: member, record, now, deadline, ttl, seed (1/0), event (0 none, 1 started,
-- 2 completed, 3 stopped), numwant, bitfield bytes ('' = none), store (1/0),
-- only registered (1/0), max peers per torrent, poll grace (seconds before a new peer's
-- first poll), peer ids wanted (1/0).
-- Reply: {'ok', seeders, leechers, completed, warning, fresh, watched, asker's bits record,
-- pieces, stride, left, first poll (unix second, 0 = the asker was listed already), member1,
-- record1, member2, record2, ...} (records '' when peer ids are not wanted) or {'refused'}.
local S, L, P, B, M, D, W, F = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local Z = KEYS[9]
local me, rec = ARGV[1], ARGV[2]
local now, deadline, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local seed, event, want = ARGV[6] == '1', ARGV[7], tonumber(ARGV[8])
local bits, store = ARGV[9], ARGV[10] == '1'
local ids = ARGV[14] == '1'

if ARGV[11] == '1' and redis.call('HGET', M, 'registered') ~= '1' then
  return {'refused'}
end

local function drop(list)
  if #list > 0 then
    redis.call('ZREM', S, unpack(list))
    redis.call('ZREM', L, unpack(list))
    redis.call('HDEL', P, unpack(list))
    redis.call('HDEL', B, unpack(list))
    redis.call('HDEL', F, unpack(list))
    redis.call('ZREM', Z, unpack(list))
    redis.call('SREM', D, unpack(list))
  end
end
-- Expiry of this torrent only, a bounded number per announce.
drop(redis.call('ZRANGEBYSCORE', S, '-inf', '(' .. deadline, 'LIMIT', 0, 500))
drop(redis.call('ZRANGEBYSCORE', L, '-inf', '(' .. deadline, 'LIMIT', 0, 500))

local was_seed = redis.call('ZSCORE', S, me)
local was_leech = redis.call('ZSCORE', L, me)
local known = was_seed or was_leech
local n = redis.call('ZCARD', S) + redis.call('ZCARD', L)
local fresh = (n == 0) and 1 or 0
local warning, left, first_poll = '', 0, 0
if event == '3' then
  if known then
    drop({me})
    left = 1
  end
  store = false
elseif store and not known and n >= tonumber(ARGV[12]) then
  store = false
  warning = 'cap'
end

local function popcount(s)
  local c = 0
  for i = 1, #s do
    local b = string.byte(s, i)
    while b > 0 do
      c = c + (b % 2)
      b = math.floor(b / 2)
    end
  end
  return c
end

local pieces = redis.call('HGET', M, 'pieces')
local stride = redis.call('HGET', M, 'stride')
if store then
  local at = struct.pack('>I4', now)
  if seed then
    if redis.call('SISMEMBER', D, me) == 0 and (not known or event == '2' or was_leech) then
      if event == '2' or was_leech then
        redis.call('HINCRBY', M, 'completed', 1)
      end
      redis.call('SADD', D, me)
    end
    redis.call('ZADD', S, now, me)
    redis.call('ZREM', L, me)
    -- A seed's own bitfield has every bit set: its count is the piece count.
    if bits ~= '' and not pieces and (not stride or tonumber(stride) == #bits) then
      local ones = popcount(bits)
      if ones > 0 and math.ceil(ones / 8) == #bits then
        pieces, stride = tostring(ones), tostring(#bits)
        redis.call('HSET', M, 'pieces', pieces, 'stride', stride)
      end
    end
    local old = redis.call('HGET', B, me)
    if not old or string.sub(old, 6, 6) ~= 'A' then
      redis.call('HSET', B, me, 'R' .. at .. 'A')
    end
  else
    redis.call('ZADD', L, now, me)
    redis.call('ZREM', S, me)
    if bits ~= '' then
      if pieces then
        local np = tonumber(pieces)
        if #bits ~= math.ceil(np / 8) then
          warning = 'length'
        else
          local spare = #bits * 8 - np
          if spare > 0 and bit.band(string.byte(bits, #bits), bit.lshift(1, spare) - 1) ~= 0 then
            warning = 'spare'
          end
        end
      elseif stride and tonumber(stride) ~= #bits then
        warning = 'length'
      end
      if warning == '' then
        if not stride then
          stride = tostring(#bits)
          redis.call('HSET', M, 'stride', stride)
        end
        redis.call('HSET', B, me, 'R' .. at .. 'B' .. bits)
      end
    else
      -- "Every piece" came from an earlier left=0; this peer now lacks some.
      local old = redis.call('HGET', B, me)
      if old and string.sub(old, 1, 1) == 'R' and string.sub(old, 6, 6) == 'A' then
        redis.call('HDEL', B, me)
      end
    end
  end
  redis.call('HSET', P, me, rec)
  if not known then
    first_poll = now + tonumber(ARGV[13])
    redis.call('HSET', F, me, string.format('%d:0', first_poll))
    redis.call('ZADD', Z, first_poll, me)
  end
  for _, k in ipairs({S, L, P, B, D, F, Z}) do
    redis.call('EXPIRE', k, ttl)
  end
end

local completed = tonumber(redis.call('HGET', M, 'completed') or '0')
if redis.call('HGET', M, 'registered') ~= '1' and completed == 0 and redis.call('EXISTS', M) == 1 then
  redis.call('EXPIRE', M, ttl)
end

local reply = {'ok', redis.call('ZCARD', S), redis.call('ZCARD', L), completed, warning, fresh,
  redis.call('EXISTS', W), redis.call('HGET', B, me) or '', pieces or '', stride or '', left,
  first_poll}
if event ~= '3' then
  local function pick(z, k)
    if k <= 0 then
      return
    end
    local got = redis.call('ZRANDMEMBER', z, k)
    if #got == 0 then
      return
    end
    -- Peer ids only for a reply that lists them (non-compact): reading them is half the cost.
    local recs = ids and redis.call('HMGET', P, unpack(got)) or {}
    for i, m in ipairs(got) do
      if m ~= me and (recs[i] or not ids) then
        reply[#reply + 1] = m
        reply[#reply + 1] = recs[i] or ''
      end
    end
  end
  -- A seed needs leechers; a leecher takes both, in proportion (one more of each, for the
  -- asker itself that is left out).
  local ns, nl = redis.call('ZCARD', S), redis.call('ZCARD', L)
  if seed or ns + nl <= want + 1 then
    pick(L, want + 1)
    if not seed then
      pick(S, want + 1)
    end
  else
    local ks = math.min(ns, math.ceil(want * ns / (ns + nl)))
    pick(S, ks + 1)
    pick(L, want - ks + 1)
  end
end
return reply
