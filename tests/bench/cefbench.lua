-- Copyright (C) ngx_cef_module developers
-- SPDX-License-Identifier: BSD-2-Clause
-- make bench, server 3: what a shop would write in OpenResty instead of the
-- module.  The customer id from the cookie (its signature is NOT verified:
-- that flatters Lua), the profile from a lua_shared_dict (filled at start
-- from cef-bench's TSV of the visitors), the same rules as the module's
-- rule file (rules.lua, written by tests/bench/workload.py, in priority
-- order), and one ngx.re.gsub over the buffered body that fills the slots.
-- make bench-peers also serves the same body filter with a fixed table
-- (fixed_offers, fixed_header).

local _M = {}

local dict = ngx.shared.cef_profiles
local rules
local find, sub, gmatch = string.find, string.sub, string.gmatch
local tonumber, concat = tonumber, table.concat
local re_gsub = ngx.re.gsub

function _M.init(tsv, rules_file)
    rules = dofile(rules_file)
    for line in io.lines(tsv) do
        local tab = find(line, "\t", 1, true)
        dict:set(sub(line, 1, tab - 1), sub(line, tab + 1))
    end
end


-- first_name, lifecycle, clv, churn_risk, nps, orders, segments, interests
local function parse(s)
    local f, n = {}, 0
    for field in gmatch(s, "[^\t]+") do
        n = n + 1
        f[n] = field
    end
    local p = {first_name = f[1], lifecycle = f[2], clv = tonumber(f[3]),
               churn_risk = tonumber(f[4]), nps = tonumber(f[5]),
               orders = tonumber(f[6]), segs = {}, int = {}}
    for seg in gmatch(f[7], "[^,]+") do
        p.segs[seg] = true
    end
    for k, v in gmatch(f[8], "([^,:]+):([^,]+)") do
        p.int[k] = tonumber(v)
    end
    return p
end


-- one condition: the issue-22 mix (seg, life, clv, orders, churn, nps,
-- int) and the classic one of issue 9 (gt, seg2, int2, life2, orders2)
local function cond(c, p)
    local k = c.k
    if k == "seg" then
        return p.segs[c.a]
    elseif k == "life" then
        return p.lifecycle == c.a
    elseif k == "int" then
        local v = p.int[c.a]
        return v ~= nil and v >= c.n
    elseif k == "clv" then
        return p.clv >= c.n
    elseif k == "orders" then
        return p.orders > c.n
    elseif k == "churn" then
        return p.churn_risk >= c.n
    elseif k == "nps" then
        return p.nps <= c.n
    elseif k == "gt" then
        return p.clv > c.n
    elseif k == "seg2" then
        return p.segs[c.a] and p.segs[c.b]
    elseif k == "int2" then
        local v = p.int[c.a]
        return v ~= nil and v >= c.n
    elseif k == "life2" then
        return p.lifecycle == c.a and p.churn_risk >= c.n
    elseif k == "orders2" then
        return p.orders >= c.n and p.segs[c.a]
    end
    return p.clv >= 0
end


-- a rule's conditions, all of which must hold (a Lua programmer's `and`)
local function match(cs, p)
    for i = 1, #cs do
        if not cond(cs[i], p) then
            return false
        end
    end
    return true
end


function _M.decide()
    local c = ngx.var.cookie_c
    if not c then
        return
    end
    local dot = find(c, ".", 1, true)
    if not dot then
        return
    end
    local s = dict:get(sub(c, 1, dot - 1))
    if not s then
        return
    end
    local p = parse(s)
    local offers, left = {}, 3
    for i = 1, #rules do
        local r = rules[i]
        if not offers[r.slot] and match(r.c, p) then
            if r.post then
                offers[r.slot] = r.pre .. p.first_name .. r.post
            else
                offers[r.slot] = r.pre
            end
            left = left - 1
            if left == 0 then
                break
            end
        end
    end
    ngx.ctx.offers = offers
end


-- make bench-peers' other Lua peer, the one issue 22's independent
-- measurement names: one ngx.re.gsub over the page with a fixed table of
-- offers (the three of sub_filter); no cookie, no profile, no rules.
-- fixed_offers() is called once from init_by_lua_block.
local fixed

function _M.fixed_offers(t)
    fixed = t
end


function _M.fixed_header()
    ngx.header.content_length = nil
    ngx.ctx.offers = fixed
end


function _M.header()
    if ngx.ctx.offers then
        ngx.header.content_length = nil
        ngx.header.cache_control = "private"
    end
end


function _M.body()
    local ctx = ngx.ctx
    local offers = ctx.offers
    if not offers then
        return
    end
    local chunk, eof = ngx.arg[1], ngx.arg[2]
    local buf = ctx.buf
    if not buf then
        buf = {}
        ctx.buf = buf
    end
    buf[#buf + 1] = chunk
    if not eof then
        ngx.arg[1] = nil
        return
    end
    ngx.arg[1] = re_gsub(concat(buf),
                         [[<!--cef:slot ([a-z]+)-->(.*?)<!--/cef:slot-->]],
                         function(m) return offers[m[1]] or m[2] end, "jos")
end

return _M
