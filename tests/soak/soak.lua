-- Copyright (C) ngx_cef_module developers
-- SPDX-License-Identifier: BSD-2-Clause
-- wrk script for make soak: each request carries the next Cookie header
-- from $SOAK_COOKIES (one a line; an empty line sends none); every status
-- other than 200 is counted and reported by done() as "non200 N".
local cookies = {}
for line in io.lines(os.getenv("SOAK_COOKIES")) do
    cookies[#cookies + 1] = line
end
local threads = {}
local i = 0

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    non200 = 0
    i = math.random(#cookies)
end

function request()
    i = i + 1
    local c = cookies[(i % #cookies) + 1]
    if c == "" then
        return wrk.format("GET", "/page.html")
    end
    return wrk.format("GET", "/page.html", { ["Cookie"] = c })
end

function response(status, headers, body)
    if status ~= 200 then
        non200 = non200 + 1
    end
end

function done(summary, latency, requests)
    local n = 0
    for _, t in ipairs(threads) do
        n = n + t:get("non200")
    end
    io.write(string.format("non200 %d\n", n))
end
