-- Copyright (C) ngx_cef_module developers
-- SPDX-License-Identifier: BSD-2-Clause
-- wrk script: every request carries the next Cookie header from the file
-- named by $COOKIES (one header value a line), on the path $BENCH_PATH.
local cookies = {}
for line in io.lines(os.getenv("COOKIES")) do
    cookies[#cookies + 1] = line
end
local path = os.getenv("BENCH_PATH") or "/"
local i = 0

request = function()
    i = i + 1
    return wrk.format("GET", path, { ["Cookie"] = cookies[(i % #cookies) + 1] })
end
