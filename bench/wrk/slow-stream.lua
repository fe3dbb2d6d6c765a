-- wrk -s: the slow stream, POST /v1/messages, streaming, body bodies/slow-stream.json: model
-- claude-haiku-4-5-slow, which the gateways route to the upstream's /slow/20/50 (run.py
-- asks nginx itself at that path).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")
common.setup("anthropic", dir .. "bodies/slow-stream.json")
done = common.done
