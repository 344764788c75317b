-- borrowstore: every store-side transition of one object, in one script.
--
-- KEYS: 1 state hash, 2 readers hash, 3 holders hash, 4 tickets hash,
--       5 taken (a short-lived copy of a value consumed by `take`).
-- All five keys share the hash tag {<object key>}, so the script touches
-- one cluster slot.
--
-- State hash fields: v (version), b (value), had (1 once it had an owner),
-- o/od (owner claim id / lease deadline), w/wd (writer), p (put token),
-- pt (last publish token), nx (no lease can run out before this time: the
-- claims are scanned for expiry only from then on).
-- Readers and holders hashes: claim id -> lease deadline (ms).
-- Tickets hash: ticket id -> "<kind>:<claim id>", or
-- "R:<redeem token>:<kind>:<claim id>" once redeemed.
--
-- The rules are those of borrowstore::state::State::apply, and every
-- operation is idempotent: by claim id (acquire what is held, release what
-- is not: no-op) or by a token the caller sends again when it retries.
--
-- Every transition that gives a claim back (a release, an expired lease, an
-- eviction) publishes the object key on the channel '<namespace>:released',
-- where the waiting borrows of every process are listening.
--
-- A refusal because of borrows ('borrowed', 'mutably_borrowed') carries the
-- borrows it saw: 'borrowed:<readers>:<writer 0/1>'.
--
-- Notes hash (M, '<namespace>:{<object key>}:m', in the same slot as the
-- state hash; what inspection shows, never what a rule reads): field 'obj'
-- = '<type name>|<size>|<created ms>|<name>', and for each claim id
-- '<pid>|<host>|<taken ms>|<label>', written by the call that takes the
-- claim (the last argument of put, acquire, acquire_fetch and redeem) and
-- deleted by its release; notes of expired claims go with the object.
local S, R, H, T, X = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local M = string.sub(S, 1, -2) .. 'm'
local op = ARGV[1]
local NS, OKEY = string.match(S, '^(.*):{([^}]*)}:s$')

local function announce()
  if NS then redis.call('PUBLISH', NS .. ':released', OKEY) end
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function exists() return redis.call('EXISTS', S) == 1 end
local function owned() return redis.call('HEXISTS', S, 'o') == 1 end
local function written() return redis.call('HEXISTS', S, 'w') == 1 end
local function readers() return redis.call('HLEN', R) end
local function holders() return redis.call('HLEN', H) end

-- A refusal because of borrows, with the borrows seen as it is made:
-- '<status>:<readers>:<writer 0/1>'.
local function busy(status)
  return status .. ':' .. readers() .. ':' .. (written() and '1' or '0')
end

local function holds(kind, id)
  if kind == 'o' then return redis.call('HGET', S, 'o') == id
  elseif kind == 'w' then return redis.call('HGET', S, 'w') == id
  elseif kind == 'r' then return redis.call('HEXISTS', R, id) == 1
  elseif kind == 'h' then return redis.call('HEXISTS', H, id) == 1
  end
  return false
end

local function evict() redis.call('DEL', S, R, H, T, M) end

-- Evicts when the object had an owner and no claim is left.
local function settle()
  if redis.call('HGET', S, 'had') == '1' and not owned() and not written()
     and readers() == 0 and holders() == 0 then
    evict()
    return true
  end
  return false
end

local function expired(d, now)
  local n = tonumber(d)
  return n and n > 0 and n < now
end

-- Lowers the next-scan time to a new claim's deadline.
local function note_deadline(deadline)
  local d = tonumber(deadline)
  local nx = tonumber(redis.call('HGET', S, 'nx') or '')
  if d and d > 0 and (not nx or d < nx) then redis.call('HSET', S, 'nx', d) end
end

-- Releases every claim whose lease ran out; drops tickets whose claim is gone.
local function expire(now)
  local nx = tonumber(redis.call('HGET', S, 'nx') or '')
  if nx and nx > now then return false end
  local changed = false
  if expired(redis.call('HGET', S, 'od'), now) then
    redis.call('HDEL', S, 'o', 'od'); changed = true
  end
  if expired(redis.call('HGET', S, 'wd'), now) then
    redis.call('HDEL', S, 'w', 'wd'); changed = true
  end
  -- The earliest deadline left decides when to scan again.
  local earliest = now + 86400000
  local function keep(d)
    local n = tonumber(d)
    if n and n > 0 and n < earliest then earliest = n end
  end
  keep(redis.call('HGET', S, 'od'))
  keep(redis.call('HGET', S, 'wd'))
  for _, hash in ipairs({R, H}) do
    local all = redis.call('HGETALL', hash)
    for i = 1, #all, 2 do
      if expired(all[i + 1], now) then
        redis.call('HDEL', hash, all[i]); changed = true
      else
        keep(all[i + 1])
      end
    end
  end
  redis.call('HSET', S, 'nx', earliest)
  if not changed then return false end
  announce()
  local ts = redis.call('HGETALL', T)
  for i = 1, #ts, 2 do
    local kind, id = string.match(ts[i + 1], '^(%a):(%x+)$')
    if kind and not holds(kind, id) then redis.call('HDEL', T, ts[i]) end
  end
  return settle()
end

local function acquire(kind, id, deadline)
  if holds(kind, id) then return 'ok' end
  note_deadline(deadline)
  if kind == 'r' then
    if written() then return busy('mutably_borrowed') end
    redis.call('HSET', R, id, deadline)
  elseif kind == 'w' then
    if written() or readers() > 0 then return busy('borrowed') end
    redis.call('HSET', S, 'w', id, 'wd', deadline)
  elseif kind == 'o' then
    if owned() then return 'owned' end
    redis.call('HSET', S, 'o', id, 'od', deadline, 'had', '1')
  elseif kind == 'h' then
    redis.call('HSET', H, id, deadline)
    redis.call('HSET', S, 'had', '1')
  else
    return 'bad_kind'
  end
  return 'ok'
end

-- Gives a claim back. `disown`: if it was the last owner or holder, the
-- object becomes plain again (had = 0) instead of being evicted.
local function release(kind, id, disown)
  if not holds(kind, id) then return 'ok' end
  if kind == 'r' then redis.call('HDEL', R, id)
  elseif kind == 'w' then redis.call('HDEL', S, 'w', 'wd')
  elseif kind == 'o' then redis.call('HDEL', S, 'o', 'od')
  elseif kind == 'h' then redis.call('HDEL', H, id)
  end
  if disown and (kind == 'o' or kind == 'h') and not owned() and holders() == 0 then
    redis.call('HSET', S, 'had', '0')
  end
  announce()
  if settle() then return 'evicted' end
  return 'ok'
end

-- Records the note of a claim just taken ('' for none).
local function note(id, text)
  if text and text ~= '' then redis.call('HSET', M, id, text) end
end

-- Everything inspection shows (op 'peek'), as it is: expired claims are not
-- released.
local function inspect_all()
  local s = redis.call('HMGET', S, 'v', 'o', 'od', 'w', 'wd', 'had')
  return {'ok', s[1], s[2] or '', s[3] or '', s[4] or '', s[5] or '', s[6] or '0',
          redis.call('HGETALL', R), redis.call('HGETALL', H), redis.call('HGETALL', T),
          redis.call('HGETALL', M), tostring(now_ms())}
end

local function renew(kind, id, deadline)
  if not holds(kind, id) then return false end
  if kind == 'o' then redis.call('HSET', S, 'od', deadline)
  elseif kind == 'w' then redis.call('HSET', S, 'wd', deadline)
  elseif kind == 'r' then redis.call('HSET', R, id, deadline)
  else redis.call('HSET', H, id, deadline) end
  return true
end

if op == 'put' then
  -- ARGV: blob, put token, init kind ('' for none), init id, deadline,
  -- init claim's note, object note
  if exists() then
    if redis.call('HGET', S, 'p') == ARGV[3] then return 'ok' end
    return 'exists'
  end
  redis.call('HSET', S, 'v', 1, 'b', ARGV[2], 'had', '0', 'p', ARGV[3])
  if ARGV[4] ~= '' then acquire(ARGV[4], ARGV[5], ARGV[6]); note(ARGV[5], ARGV[7]) end
  if ARGV[8] then redis.call('HSET', M, 'obj', ARGV[8]) end
  return 'ok'
end

if op == 'take' then
  -- ARGV: take token. The taken value is kept for a minute under X so a
  -- retried take (lost reply) gets it again.
  if not exists() then
    local kept = redis.call('HMGET', X, 'token', 'v', 'b')
    if kept[1] == ARGV[2] then return {'ok', kept[2], kept[3]} end
    return {'missing'}
  end
  expire(now_ms())
  if not exists() then return {'missing'} end
  if written() or readers() > 0 then return {busy('borrowed')} end
  local vb = redis.call('HMGET', S, 'v', 'b')
  evict()
  announce()
  redis.call('HSET', X, 'token', ARGV[2], 'v', vb[1], 'b', vb[2])
  redis.call('PEXPIRE', X, 60000)
  return {'ok', vb[1], vb[2]}
end

if op == 'peek' then
  -- What inspection shows, as it is: expired claims are listed, not released.
  if not exists() then return {'missing'} end
  return inspect_all()
end

if not exists() then
  if op == 'release' or op == 'renew' then return 'ok' end
  if op == 'fetch' or op == 'inspect' then return {'missing'} end
  return 'gone'
end
local now = now_ms()
expire(now)
if not exists() then
  if op == 'release' then return 'ok' end
  if op == 'fetch' or op == 'inspect' then return {'missing'} end
  if op == 'renew' then return 'gone' end
  return 'gone'
end

if op == 'fetch' then
  -- ARGV: known version ('' for none). Moves no value when it is current.
  local v = redis.call('HGET', S, 'v')
  if v == ARGV[2] then return {'unchanged', v} end
  return {'changed', v, redis.call('HGET', S, 'b')}
elseif op == 'acquire' then
  -- ARGV: kind, id, deadline, note
  local status = acquire(ARGV[2], ARGV[3], ARGV[4])
  if status == 'ok' then note(ARGV[3], ARGV[5]) end
  return status
elseif op == 'acquire_fetch' then
  -- ARGV: kind, id, deadline, known version, note. A borrow and a version-checked
  -- read in one round trip: {status} or {'ok', 'unchanged', v} or
  -- {'ok', 'changed', v, value}.
  local status = acquire(ARGV[2], ARGV[3], ARGV[4])
  if status ~= 'ok' then return {status} end
  note(ARGV[3], ARGV[6])
  local v = redis.call('HGET', S, 'v')
  if v == ARGV[5] then return {'ok', 'unchanged', v} end
  return {'ok', 'changed', v, redis.call('HGET', S, 'b')}
elseif op == 'release' then
  -- ARGV: kind, id
  redis.call('HDEL', M, ARGV[3])
  return release(ARGV[2], ARGV[3], false)
elseif op == 'disown' then
  -- ARGV: kind, id
  redis.call('HDEL', M, ARGV[3])
  return release(ARGV[2], ARGV[3], true)
elseif op == 'evict' then
  if written() or readers() > 0 then return busy('borrowed') end
  evict()
  announce()
  return 'ok'
elseif op == 'publish' then
  -- ARGV: writer id, blob, publish token
  if redis.call('HGET', S, 'pt') == ARGV[4] then return redis.call('HGET', S, 'v') end
  if redis.call('HGET', S, 'w') ~= ARGV[2] then return 'lost' end
  local v = redis.call('HINCRBY', S, 'v', 1)
  redis.call('HSET', S, 'b', ARGV[3], 'pt', ARGV[4])
  return tostring(v)
elseif op == 'renew' then
  -- ARGV: deadline, then kind, id pairs. Returns the claims not held.
  local lost = {}
  for i = 3, #ARGV, 2 do
    if not renew(ARGV[i], ARGV[i + 1], ARGV[2]) then
      table.insert(lost, ARGV[i]); table.insert(lost, ARGV[i + 1])
    end
  end
  return lost
elseif op == 'issue' then
  -- ARGV: ticket, kind, id
  if not holds(ARGV[3], ARGV[4]) then return 'not_held' end
  redis.call('HSET', T, ARGV[2], ARGV[3] .. ':' .. ARGV[4])
  return 'ok'
elseif op == 'redeem' then
  -- ARGV: ticket, redeem token, deadline, kind, note. Returns {'ok', kind, id}.
  -- A ticket of another kind (damaged bytes) is refused and not consumed.
  local t = redis.call('HGET', T, ARGV[2])
  if not t then return {'redeemed'} end
  local token, kind, id = string.match(t, '^R:(%x+):(%a):(%x+)$')
  if token then
    if token == ARGV[3] then return {'ok', kind, id} end
    return {'redeemed'}
  end
  kind, id = string.match(t, '^(%a):(%x+)$')
  if kind and kind ~= ARGV[5] then return {'wrong_kind', kind} end
  if not kind or not renew(kind, id, ARGV[4]) then
    redis.call('HDEL', T, ARGV[2])
    return {'redeemed'}
  end
  redis.call('HSET', T, ARGV[2], 'R:' .. ARGV[3] .. ':' .. t)
  -- The redeemer's process and time, the label the claim was taken with.
  local old = redis.call('HGET', M, id) or ''
  note(id, (ARGV[6] or '') .. (string.match(old, '^[^|]*|[^|]*|[^|]*|(.*)$') or ''))
  return {'ok', kind, id}
elseif op == 'inspect' then
  return {'ok', redis.call('HGET', S, 'v'), owned() and 1 or 0, written() and 1 or 0,
          readers(), holders(), redis.call('HGET', S, 'had')}
elseif op == 'reap' then
  return 'ok'
end
return 'bad_op'
