-- borrowstore: every store-side transition of one object, and the table of
-- processes, in one script.
--
-- OBJECT OPERATIONS
--
-- KEYS: 1 state hash, 2 readers hash, 3 holders hash, 4 tickets hash,
--       5 taken (a short-lived copy of a value consumed by `take`).
-- All five keys share the hash tag {<object key>}, so the script touches
-- one cluster slot. So does the redeem record of a ticket,
-- '<ns>:{<object key>}:d:<ticket>' (see 'redeem').
--
-- State hash fields: v (version), b (value), had (1 once it had an owner),
-- o/od (owner claim id / its claim record), w/wd (writer id / record),
-- p (put token), pt (last publish token), nx (the earliest deadline of a
-- ticket in flight: the claims are scanned for expiry only from then on;
-- absent while no ticket is in flight, so that the common calls need not
-- read the server's time).
-- Readers and holders hashes: claim id -> claim record.
-- Tickets hash: ticket id -> "<kind>:<claim id>", removed when the ticket
-- is redeemed or its claim is gone.
--
-- A claim record is '<holder>[;<more>]': only the holder part, up to the
-- first ';', is read here; anything after it (metadata about the claim) is
-- kept as it is. The holder is
--   <process id>   (hex) the claim belongs to that process: it lives as
--                  long as the process's record in the process table;
--   @<deadline>    the claim is in a ticket no process has redeemed yet:
--                  it is released at <deadline> (server time, ms).
-- No claim of a process has a deadline of its own here: the object script
-- never judges whether a process lives (on a cluster it cannot read the
-- process table, which is in another slot). The reap pass does: it reads
-- the process table and calls 'reap' on every object with the processes
-- found dead.
--
-- The rules are those of borrowstore::state::State::apply, and every
-- operation is idempotent: by claim id (acquire what is held, release what
-- is not: no-op) or by a token the caller sends again when it retries.
-- Every time is the server's (TIME); a client sends durations, never times.
--
-- Every transition that gives a claim back (a release, a reclaimed claim, an
-- eviction) publishes the object key on the channel '<namespace>:released',
-- where the waiting borrows of every process are listening.
--
-- A refusal because of borrows ('borrowed', 'mutably_borrowed') carries the
-- borrows it saw: 'borrowed:<readers>:<writer 0/1>'.
--
-- Notes hash (M, '<namespace>:{<object key>}:m', in the same slot as the
-- state hash; what inspection shows, never what a rule reads): field 'obj'
-- = '<type name>|<size>|<created ms>|<name>', and for each claim id but a
-- reader's the claim's note '<os pid>|<host>|<taken ms>|<lease ms>|<label>',
-- written by the call that takes the claim (the last argument of put,
-- acquire, acquire_fetch and redeem) and deleted by its release; the notes
-- of reclaimed claims go with the object. A reader's note rides in its
-- claim record instead, '<holder>;<note>' (so a reader's acquire and
-- release write one hash), and goes with it. 'peek' reads both, with the
-- claims as they are and, where the process table can be read from here
-- (not across cluster slots), the table.
--
-- PROCESS TABLE OPERATIONS ('beat', 'adopt', 'forget', 'turn')
--
-- KEYS[1] is the namespace's process table, the hash '<ns>:{<ns>:procs}'
-- (the other keys are not used). Fields:
--   <process id> -> '<deadline>:<lease>' (ms, server time) while it lives
--                   (':w' appended while it has had a renewal window and
--                   not renewed since), 'dead:<time>' once its deadline
--                   passed;
--   '~'          -> the server time of the last call on the table;
--   '^'          -> '<process id>:<until>:<known>': whose turn it is to
--                   sweep the namespace, and with the dead ids of which
--                   time ('turn').
-- A store connection renews its record every third of its lease ('beat'),
-- which also judges every record: one round trip however many claims it
-- holds. The stall window: if a call finds the table untouched for longer
-- than half a record's lease (the server was stopped, or every process
-- was), that record's deadline is first moved to a full lease from now, so
-- that live processes get to renew before anything is judged dead. A
-- record gets one such window until its process renews again: the table
-- cannot tell a stall from the silence of a dead process with a short
-- lease among processes that renew seldom, so a dead process is given one
-- extra lease at most. The table is deleted when no process is left in
-- it (and expires a day after its last call).
-- The keys and arguments of the call being run, set by main (below) at
-- the start of every call; M is the notes hash; NS and OKEY, the
-- namespace and object key, are read from the state hash's name by the
-- calls that need them (read_names).
local S, R, H, T, X, M, A, NS, OKEY
-- While one call ends several claims ('cancels'), HUSH holds back the
-- announcement and eviction check of each release; HUSHED says a release
-- happened, so the call announces once and settles once at its end.
local HUSH, HUSHED

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The process table ---------------------------------------------------------

local function table_op(op)
  local P = S
  local now = now_ms()
  local clock = tonumber(redis.call('HGET', P, '~') or '')
  local gap = clock and (now - clock) or 0
  local all = redis.call('HGETALL', P)
  local dead, alive = {}, {}
  local latest = 0
  for i = 1, #all, 2 do
    local id, rec = all[i], all[i + 1]
    if id ~= '~' and id ~= '^' then
      local d, l, given = string.match(rec, '^(%d+):(%d+)(:?w?)$')
      d, l = tonumber(d), tonumber(l)
      if d then
        if gap > l / 2 and given == '' and d < now + l then
          d = now + l
          redis.call('HSET', P, id, d .. ':' .. l .. ':w')
        end
        if d < now then
          redis.call('HSET', P, id, 'dead:' .. now)
          table.insert(dead, id)
          latest = now
        else
          alive[id] = true
        end
      else
        table.insert(dead, id)
        local t = tonumber(string.match(rec, '^dead:(%d+)$') or '') or 0
        if t > latest then latest = t end
      end
    end
  end
  local status = 'ok'
  if op == 'beat' then
    -- ARGV: process id, lease (ms), mode: 'renew' (it holds claims),
    -- 'leave' (it holds none), 'look' (it holds none and has no record);
    -- registered: '1' if it had a record since it last left.
    local id, lease, mode, registered = A[2], tonumber(A[3]), A[4], A[5]
    local rec = redis.call('HGET', P, id)
    if rec and string.sub(rec, 1, 5) == 'dead:' then
      status = 'dead'
    elseif not rec and registered == '1' and mode ~= 'look' then
      -- Its record was judged dead and forgotten: so are its claims.
      status = 'dead'
    elseif mode == 'renew' then
      redis.call('HSET', P, id, (now + lease) .. ':' .. lease)
      alive[id] = true
    elseif rec then
      -- 'leave', or 'look' finding a record a reaper adopted for it.
      redis.call('HDEL', P, id)
      alive[id] = nil
    end
  elseif op == 'adopt' then
    -- ARGV: lease (ms), process ids found on claims with no record. Each
    -- gets a record as if it had just renewed: a live process renews it,
    -- a dead one lets it run out.
    local lease = tonumber(A[2])
    for i = 3, #A do
      if redis.call('HEXISTS', P, A[i]) == 0 then
        redis.call('HSET', P, A[i], (now + lease) .. ':' .. lease)
        alive[A[i]] = true
      end
    end
  elseif op == 'turn' then
    -- ARGV: process id, lease (ms), known: when the latest of the dead ids
    -- the caller's sweep would pass was judged dead ('0' for the periodic
    -- sweep). One reaper sweeps at a time: 'busy' while another's turn
    -- runs knowing of deaths at least as recent; else 'ok', and the turn
    -- is the caller's for a lease.
    local holder, till, known = string.match(redis.call('HGET', P, '^') or '',
                                             '^(%x+):(%d+):(%d+)$')
    local mine = tonumber(A[4]) or 0
    if holder and holder ~= A[2] and tonumber(till) >= now and tonumber(known) >= mine then
      status = 'busy'
    else
      redis.call('HSET', P, '^', A[2] .. ':' .. (now + tonumber(A[3])) .. ':' .. mine)
    end
  else
    -- ARGV: process ids whose claims every object has been rid of.
    for i = 2, #A do
      local rec = redis.call('HGET', P, A[i])
      if rec and string.sub(rec, 1, 5) == 'dead:' then redis.call('HDEL', P, A[i]) end
    end
  end
  local n = redis.call('HLEN', P) - redis.call('HEXISTS', P, '~') - redis.call('HEXISTS', P, '^')
  if n == 0 then
    redis.call('DEL', P)
  else
    redis.call('HSET', P, '~', now)
    -- Only so that a namespace every process left, dead ones in its table,
    -- does not keep the table for ever; the live ones touch it every beat.
    redis.call('PEXPIRE', P, 86400000)
  end
  -- {status, server time, the time the latest of the dead was judged,
  --  number of dead, dead ids..., live ids...}
  local out = {status, tostring(now), tostring(latest), tostring(#dead)}
  for _, id in ipairs(dead) do table.insert(out, id) end
  for id in pairs(alive) do
    if redis.call('HEXISTS', P, id) == 1 then table.insert(out, id) end
  end
  return out
end

-- One object ---------------------------------------------------------------

-- Reads the namespace and object key from the state hash's name (only
-- the calls that publish or name other keys need them).
local function read_names()
  NS, OKEY = string.match(S, '^(.*):{([^}]*)}:s$')
end

local function announce()
  if HUSH then HUSHED = true
  elseif NS then redis.call('PUBLISH', NS .. ':released', OKEY) end
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

-- The parts of a claim record: its process id ('' for a ticket in flight),
-- its deadline (nil for a process's claim), and what follows the holder.
local function parse(rec)
  local holder, more = string.match(rec or '', '^([^;]*)(.*)$')
  local pid = string.match(holder, '^(%x*)')
  local d = tonumber(string.match(holder, '^%x*@(%d+)$') or '')
  return pid, d, more
end

local function record(kind, id)
  if kind == 'o' then return redis.call('HGET', S, 'od')
  elseif kind == 'w' then return redis.call('HGET', S, 'wd')
  elseif kind == 'r' then return redis.call('HGET', R, id)
  else return redis.call('HGET', H, id) end
end

local function set_record(kind, id, rec)
  if kind == 'o' then redis.call('HSET', S, 'od', rec)
  elseif kind == 'w' then redis.call('HSET', S, 'wd', rec)
  elseif kind == 'r' then redis.call('HSET', R, id, rec)
  else redis.call('HSET', H, id, rec) end
end

local function evict() redis.call('DEL', S, R, H, T, M) end

-- Records the note of a claim just taken ('' for none).
local function note(id, text)
  if text and text ~= '' then redis.call('HSET', M, id, text) end
end

-- Everything inspection shows (op 'peek'), as it is: nothing is reclaimed.
local function inspect_all()
  local s = redis.call('HMGET', S, 'v', 'o', 'od', 'w', 'wd', 'had')
  local procs = {}
  if NS then
    local t = redis.pcall('HGETALL', NS .. ':{' .. NS .. ':procs}')
    if type(t) == 'table' and not t.err then procs = t end
  end
  return {'ok', s[1], s[2] or '', s[3] or '', s[4] or '', s[5] or '', s[6] or '0',
          redis.call('HGETALL', R), redis.call('HGETALL', H), redis.call('HGETALL', T),
          redis.call('HGETALL', M), tostring(now_ms()), procs}
end

-- Evicts when the object had an owner and no claim is left.
local function settle()
  if redis.call('HGET', S, 'had') == '1' and not owned() and not written()
     and readers() == 0 and holders() == 0 then
    evict()
    return true
  end
  return false
end

-- Lowers the next-scan time to a ticket's deadline.
local function note_deadline(d)
  local nx = tonumber(redis.call('HGET', S, 'nx') or '')
  if not nx or d < nx then redis.call('HSET', S, 'nx', d) end
end

-- Releases every claim for which gone(pid, deadline) is true; drops the
-- tickets whose claim is gone; keeps nx at the earliest deadline left.
-- Returns whether anything was released, and the set of process ids of the
-- claims left.
local function reclaim(gone, now)
  local changed = false
  local earliest = nil
  local pids = {}
  local function judge(rec)
    local pid, d = parse(rec)
    if gone(pid, d) then return true end
    if d and (not earliest or d < earliest) then earliest = d end
    if pid ~= '' then pids[pid] = true end
    return false
  end
  if owned() and judge(redis.call('HGET', S, 'od')) then
    redis.call('HDEL', S, 'o', 'od'); changed = true
  end
  if written() and judge(redis.call('HGET', S, 'wd')) then
    redis.call('HDEL', S, 'w', 'wd'); changed = true
  end
  for _, hash in ipairs({R, H}) do
    local all = redis.call('HGETALL', hash)
    for i = 1, #all, 2 do
      if judge(all[i + 1]) then redis.call('HDEL', hash, all[i]); changed = true end
    end
  end
  local nx = tonumber(redis.call('HGET', S, 'nx') or '')
  if earliest then
    if nx ~= earliest then redis.call('HSET', S, 'nx', earliest) end
  elseif nx then
    redis.call('HDEL', S, 'nx')
  end
  if changed then
    announce()
    local ts = redis.call('HGETALL', T)
    for i = 1, #ts, 2 do
      local kind, id = string.match(ts[i + 1], '^(%a):(%x+)$')
      if not kind or not holds(kind, id) then redis.call('HDEL', T, ts[i]) end
    end
    settle()
  end
  return changed, pids
end

-- Releases the claims of tickets whose deadline passed (only scanning from
-- the earliest such deadline on; nothing while no ticket is in flight).
local function expire(now)
  local nx = tonumber(redis.call('HGET', S, 'nx') or '')
  if not nx or nx > now then return end
  reclaim(function(_, d) return d ~= nil and d < now end, now)
end

local function acquire(kind, id, rec)
  if holds(kind, id) then return 'ok' end
  if kind == 'r' then
    if written() then return busy('mutably_borrowed') end
    redis.call('HSET', R, id, rec)
  elseif kind == 'w' then
    if written() or readers() > 0 then return busy('borrowed') end
    redis.call('HSET', S, 'w', id, 'wd', rec)
  elseif kind == 'o' then
    if owned() then return 'owned' end
    redis.call('HSET', S, 'o', id, 'od', rec, 'had', '1')
  elseif kind == 'h' then
    redis.call('HSET', H, id, rec)
    redis.call('HSET', S, 'had', '1')
  else
    return 'bad_kind'
  end
  return 'ok'
end

-- After a claim went: announces the release, and evicts the object if it
-- had an owner and no claim is left (both held back while HUSH).
local function released()
  announce()
  if not HUSH and settle() then return 'evicted' end
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
  return released()
end

-- The claim record to store for a claim of `kind` taken with note `text`:
-- a reader's note rides in its record ('<holder>;<note>'), so that a
-- reader's acquire and release touch one hash; every other claim's note
-- is in the notes hash (see note).
local function with_note(kind, rec, text)
  if kind == 'r' and text and text ~= '' then return rec .. ';' .. text end
  return rec
end

-- Takes a claim and records its note.
local function take_noted(kind, id, rec, text)
  local status = acquire(kind, id, with_note(kind, rec, text))
  if status == 'ok' and kind ~= 'r' then note(id, text) end
  return status
end

-- A cancel whose release evicted the object, retried after a lost reply,
-- finds its record; any other cancel of a gone object finds no ticket.
local function cancelled_before(ticket, token)
  local D = NS and (NS .. ':{' .. OKEY .. '}:d:' .. ticket)
  if D and redis.call('GET', D) == token .. ':c' then return 'ok' end
  return 'redeemed'
end

-- Releases the claim of ticket `ticket` in flight (of kind `want`) in one
-- step (a canceller that dies midway leaves nothing held). Its record
-- '<token>:c' under the redeem record's key (a minute) lets the same
-- cancel, retried after a lost reply, succeed again; 'redeemed' if the
-- ticket is not in flight. The caller has seen that the object exists.
local function cancel_one(ticket, token, want)
  local D = NS and (NS .. ':{' .. OKEY .. '}:d:' .. ticket)
  local t = redis.call('HGET', T, ticket)
  if not t then return cancelled_before(ticket, token) end
  local kind, id = string.match(t, '^(%a):(%x+)$')
  if kind and kind ~= want then return 'wrong_kind' end
  redis.call('HDEL', T, ticket)
  if not HUSH and redis.call('EXISTS', T) == 0 then redis.call('HDEL', S, 'nx') end
  if D then redis.call('SET', D, token .. ':c', 'PX', 60000) end
  if not kind then return 'redeemed' end
  if kind == 'r' then
    -- Held or not, in one call: the reader's record is its claim (and
    -- holds its note).
    if redis.call('HDEL', R, id) == 0 then return 'redeemed' end
    return released()
  end
  if not holds(kind, id) then return 'redeemed' end
  redis.call('HDEL', M, id)
  return release(kind, id, false)
end

-- Every object operation (the general code: what the fast paths below do
-- not take).
local function object_op(op)
  read_names()
  if op == 'put' then
    -- ARGV: blob, put token, init kind ('' for none), init id, claim record,
    -- the init claim's note, the object's note
    if exists() then
      if redis.call('HGET', S, 'p') == A[3] then return 'ok' end
      return 'exists'
    end
    redis.call('HSET', S, 'v', 1, 'b', A[2], 'had', '0', 'p', A[3])
    if A[4] ~= '' then take_noted(A[4], A[5], A[6], A[7]) end
    if A[8] then redis.call('HSET', M, 'obj', A[8]) end
    return 'ok'
  end

  if op == 'take' then
    -- ARGV: take token. The taken value is kept for a minute under X so a
    -- retried take (lost reply) gets it again.
    if not exists() then
      local kept = redis.call('HMGET', X, 'token', 'v', 'b')
      if kept[1] == A[2] then return {'ok', kept[2], kept[3]} end
      return {'missing'}
    end
    expire(now_ms())
    if not exists() then return {'missing'} end
    if written() or readers() > 0 then return {busy('borrowed')} end
    local vb = redis.call('HMGET', S, 'v', 'b')
    evict()
    announce()
    redis.call('HSET', X, 'token', A[2], 'v', vb[1], 'b', vb[2])
    redis.call('PEXPIRE', X, 60000)
    return {'ok', vb[1], vb[2]}
  end

  if op == 'redeem' then
    -- ARGV: ticket, redeem token, claim record of the redeemer, kind, note.
    -- Returns {'ok', kind, id}. A ticket of another kind (damaged bytes) is
    -- refused and not consumed. A redeemed ticket leaves the tickets hash at
    -- once; its redeem record '<token>:<kind>:<id>' (expiring after a minute)
    -- lets the same redeem, retried after a lost reply, succeed again.
    local D = NS and (NS .. ':{' .. OKEY .. '}:d:' .. A[2])
    local t = exists() and redis.call('HGET', T, A[2])
    if not t then
      local kept = D and redis.call('GET', D)
      local token, kind, id = string.match(kept or '', '^(%x+):(%a):(%x+)$')
      if token and token == A[3] and exists() and holds(kind, id) then
        return {'ok', kind, id}
      end
      return {'redeemed'}
    end
    expire(now_ms())
    t = redis.call('HGET', T, A[2])
    if not t then return {'redeemed'} end
    local kind, id = string.match(t, '^(%a):(%x+)$')
    if kind and kind ~= A[5] then return {'wrong_kind', kind} end
    redis.call('HDEL', T, A[2])
    -- A claim is in a ticket ('@' record) only while its ticket is in the
    -- tickets hash: with none left, no deadline is pending.
    if redis.call('EXISTS', T) == 0 then redis.call('HDEL', S, 'nx') end
    if not kind or not holds(kind, id) then return {'redeemed'} end
    local _, _, more = parse(record(kind, id))
    -- The note: the redeemer's process and time, the label the claim was
    -- taken with.
    local label = '^[^|]*|[^|]*|[^|]*|[^|]*|(.*)$'
    if kind == 'r' then
      if A[6] and A[6] ~= '' then
        more = ';' .. A[6] .. (string.match(string.sub(more, 2), label) or '')
      end
      set_record(kind, id, A[4] .. more)
    else
      set_record(kind, id, A[4] .. more)
      local old = redis.call('HGET', M, id) or ''
      note(id, (A[6] or '') .. (string.match(old, label) or ''))
    end
    if D then redis.call('SET', D, A[3] .. ':' .. t, 'PX', 60000) end
    return {'ok', kind, id}
  end

  if op == 'peek' then
    if not exists() then return {'missing'} end
    return inspect_all()
  end

  if op == 'cancels' then
    -- ARGV: ticket, cancel token, kind, for each of several tickets of the
    -- object: what 'cancel' does for each, in one call; their statuses,
    -- in order.
    if exists() then expire(now_ms()) end
    -- The object stays while HUSH holds its eviction back: one look.
    local live = exists()
    local out = {}
    HUSH, HUSHED = true, false
    for i = 2, #A, 3 do
      table.insert(out, live and cancel_one(A[i], A[i + 1], A[i + 2])
                            or cancelled_before(A[i], A[i + 1]))
    end
    HUSH = false
    if live then
      -- What each cancel held back, once: no pending deadline if no ticket
      -- is left; if a claim went, the announcement and the eviction
      -- (reported by the last ticket that took one).
      if redis.call('EXISTS', T) == 0 then redis.call('HDEL', S, 'nx') end
      if HUSHED then
        announce()
        if settle() then
          for i = #out, 1, -1 do
            if out[i] == 'ok' then out[i] = 'evicted'; break end
          end
        end
      end
    end
    return out
  end

  if not exists() then
    if op == 'release' then return 'ok' end
    if op == 'cancel' then return cancelled_before(A[2], A[3]) end
    if op == 'fetch' or op == 'inspect' then return {'missing'} end
    if op == 'reap' then return {} end
    return 'gone'
  end
  local now = now_ms()
  if op == 'reap' then
    -- ARGV: the ids of dead processes. Releases their claims (and the
    -- tickets past their deadline); returns the process ids of the claims
    -- left, for the reaper to check that each has a record.
    local dead = {}
    for i = 2, #A do dead[A[i]] = true end
    local _, pids = reclaim(function(pid, d)
      return dead[pid] == true or (d ~= nil and d < now)
    end, now)
    local out = {}
    if exists() then
      for pid in pairs(pids) do table.insert(out, pid) end
    end
    return out
  end
  expire(now)
  if not exists() then
    if op == 'release' then return 'ok' end
    if op == 'cancel' then return cancelled_before(A[2], A[3]) end
    if op == 'fetch' or op == 'inspect' then return {'missing'} end
    return 'gone'
  end

  if op == 'fetch' then
    -- ARGV: known version ('' for none). Moves no value when it is current.
    local v = redis.call('HGET', S, 'v')
    if v == A[2] then return {'unchanged', v} end
    return {'changed', v, redis.call('HGET', S, 'b')}
  elseif op == 'acquire' then
    -- ARGV: kind, id, claim record, note
    return take_noted(A[2], A[3], A[4], A[5])
  elseif op == 'acquire_fetch' then
    -- ARGV: kind, id, claim record, known version, note. A borrow and a
    -- version-checked read in one round trip: {status} or
    -- {'ok', 'unchanged', v} or {'ok', 'changed', v, value}.
    local status = take_noted(A[2], A[3], A[4], A[6])
    if status ~= 'ok' then return {status} end
    local v = redis.call('HGET', S, 'v')
    if v == A[5] then return {'ok', 'unchanged', v} end
    return {'ok', 'changed', v, redis.call('HGET', S, 'b')}
  elseif op == 'release' then
    -- ARGV: kind, id
    redis.call('HDEL', M, A[3])
    return release(A[2], A[3], false)
  elseif op == 'disown' then
    -- ARGV: kind, id
    redis.call('HDEL', M, A[3])
    return release(A[2], A[3], true)
  elseif op == 'evict' then
    if written() or readers() > 0 then return busy('borrowed') end
    evict()
    announce()
    return 'ok'
  elseif op == 'publish' then
    -- ARGV: writer id, blob, publish token
    if redis.call('HGET', S, 'pt') == A[4] then return redis.call('HGET', S, 'v') end
    if redis.call('HGET', S, 'w') ~= A[2] then return 'lost' end
    local v = redis.call('HINCRBY', S, 'v', 1)
    redis.call('HSET', S, 'b', A[3], 'pt', A[4])
    return tostring(v)
  elseif op == 'issue' then
    -- ARGV: ticket, kind, id, lease (ms). The claim leaves its process: it
    -- is released a lease from now unless the ticket is redeemed first.
    if not holds(A[3], A[4]) then return 'not_held' end
    redis.call('HSET', T, A[2], A[3] .. ':' .. A[4])
    local d = now + tonumber(A[5])
    local _, _, more = parse(record(A[3], A[4]))
    set_record(A[3], A[4], '@' .. d .. more)
    note_deadline(d)
    return 'ok'
  elseif op == 'renew' then
    -- ARGV: ticket, lease (ms). Moves the deadline of a ticket in flight to
    -- a lease from now: 'ok:<version>', with the object's version as it is
    -- while the claim is held. 'redeemed' if it is not in flight any more
    -- (redeemed, cancelled, past its deadline, or its claim gone).
    local t = redis.call('HGET', T, A[2])
    if not t then return 'redeemed' end
    local kind, id = string.match(t, '^(%a):(%x+)$')
    if not kind or not holds(kind, id) then return 'redeemed' end
    local _, _, more = parse(record(kind, id))
    set_record(kind, id, '@' .. (now + tonumber(A[3])) .. more)
    return 'ok:' .. redis.call('HGET', S, 'v')
  elseif op == 'cancel' then
    -- ARGV: ticket, cancel token, kind (see cancel_one).
    return cancel_one(A[2], A[3], A[4])
  elseif op == 'inspect' then
    return {'ok', redis.call('HGET', S, 'v'), owned() and 1 or 0, written() and 1 or 0,
            readers(), holders(), redis.call('HGET', S, 'had')}
  end
  return 'bad_op'
end

-- Fast paths ----------------------------------------------------------------
--
-- The calls a borrow, its drop and a resolve make (a reader's or writer's
-- acquire and acquire_fetch, a release, a version-checked fetch, a put, a
-- job's renewal of a reader ticket), done here with the fewest server calls
-- in the common case: the object exists, no ticket deadline is pending
-- (no 'nx', or none due: see 'expire'), nothing is refused. Each returns
-- nil to leave the call to the general code (object_op), which gives the
-- same answer in every case; each is
-- idempotent by claim id as the general code is. (Every function is
-- defined once, when the library is loaded: a call runs main and what it
-- calls, and builds nothing else.)
local function fast(op)
  if op == 'acquire_fetch' or op == 'acquire' then
    -- One HMGET reads whether the object exists (v), its writer and whether
    -- a ticket deadline is pending.
    local kind, id = A[2], A[3]
    local s = redis.call('HMGET', S, 'v', 'w', 'nx')
    local taken = false
    if s[1] and not s[3] then
      if kind == 'r' and not s[2] then
        -- HSETNX: a retried acquire keeps the record it set. The note
        -- rides in the record (see with_note).
        redis.call('HSETNX', R, id, with_note(kind, A[4], op == 'acquire' and A[5] or A[6]))
        taken = true
      elseif kind == 'w' and (s[2] == id or (not s[2] and redis.call('EXISTS', R) == 0)) then
        if not s[2] then redis.call('HSET', S, 'w', id, 'wd', A[4]) end
        taken = true
      end
    end
    if taken then
      if kind ~= 'r' then note(id, op == 'acquire' and A[5] or A[6]) end
      if op == 'acquire' then return 'ok' end
      if s[1] == A[5] then return {'ok', 'unchanged', s[1]} end
      return {'ok', 'changed', s[1], redis.call('HGET', S, 'b')}
    end
  elseif op == 'release' then
    -- ARGV: kind, id. Not held (or no object): 'ok'. Else the claim goes,
    -- the release is announced, and the object is evicted if it had an
    -- owner and no claim is left.
    local kind, id = A[2], A[3]
    local s = redis.call('HMGET', S, 'nx', 'had', 'o', 'w')
    if not s[1] then
      local gone = false
      if kind == 'r' then gone = redis.call('HDEL', R, id) == 1
      elseif kind == 'h' then gone = redis.call('HDEL', H, id) == 1
      elseif kind == 'o' and s[3] == id then
        redis.call('HDEL', S, 'o', 'od'); s[3] = false; gone = true
      elseif kind == 'w' and s[4] == id then
        redis.call('HDEL', S, 'w', 'wd'); s[4] = false; gone = true
      end
      if gone then
        read_names()
        announce()
        if s[2] == '1' and not s[3] and not s[4] and redis.call('EXISTS', R, H) == 0 then
          redis.call('DEL', S, R, H, T, M)
          return 'evicted'
        end
      end
      -- A reader's note went with its record.
      if kind ~= 'r' then redis.call('HDEL', M, id) end
      return 'ok'
    end
  elseif op == 'renew' then
    -- ARGV: ticket, lease (ms). A reader's ticket while no deadline is due
    -- (so 'expire' has nothing to do): one HMGET reads the version and
    -- the next deadline; the reader's record is the ticket's claim.
    local s = redis.call('HMGET', S, 'v', 'nx')
    if s[1] then
      local now = now_ms()
      if not s[2] or tonumber(s[2]) > now then
        local t = redis.call('HGET', T, A[2])
        if not t then return 'redeemed' end
        local kind, id = string.match(t, '^(%a):(%x+)$')
        if kind == 'r' then
          local rec = redis.call('HGET', R, id)
          if not rec then return 'redeemed' end
          local _, _, more = parse(rec)
          redis.call('HSET', R, id, '@' .. (now + tonumber(A[3])) .. more)
          return 'ok:' .. s[1]
        end
      end
    end
  elseif op == 'fetch' then
    -- ARGV: known version ('' for none).
    local s = redis.call('HMGET', S, 'v', 'nx')
    if not s[1] then return {'missing'} end
    if not s[2] then
      if s[1] == A[2] then return {'unchanged', s[1]} end
      return {'changed', s[1], redis.call('HGET', S, 'b')}
    end
  elseif op == 'put' and (A[4] == '' or A[4] == 'o') then
    -- ARGV: as 'put' in object_op. A plain object, or one with its owner: the
    -- state hash in one HSET, the notes in one.
    if redis.call('EXISTS', S) == 1 then
      if redis.call('HGET', S, 'p') == A[3] then return 'ok' end
      return 'exists'
    end
    if A[4] == 'o' then
      redis.call('HSET', S, 'v', 1, 'b', A[2], 'p', A[3], 'o', A[5], 'od', A[6],
                 'had', '1')
    else
      redis.call('HSET', S, 'v', 1, 'b', A[2], 'had', '0', 'p', A[3])
    end
    local owner_note = A[4] == 'o' and A[7] and A[7] ~= ''
    if A[8] and owner_note then redis.call('HSET', M, 'obj', A[8], A[5], A[7])
    elseif A[8] then redis.call('HSET', M, 'obj', A[8])
    elseif owner_note then redis.call('HSET', M, A[5], A[7]) end
    return 'ok'
  end
end

-- One call: the process table's operations, else a fast path if one
-- takes the call, else the general code.
local function main(keys, argv)
  S, R, H, T, X, A = keys[1], keys[2], keys[3], keys[4], keys[5], argv
  M = string.sub(S, 1, -2) .. 'm'
  -- Upvalues outlive a call that raised an error.
  HUSH = false
  local op = argv[1]
  if op == 'beat' or op == 'adopt' or op == 'forget' or op == 'turn' then
    return table_op(op)
  end
  local r = fast(op)
  if r ~= nil then return r end
  return object_op(op)
end

-- As a script (EVAL), the call; as a function library, the connector
-- registers main instead of this line (see script.rs).
return main(KEYS, ARGV)
