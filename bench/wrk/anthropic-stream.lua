-- wrk -s: Anthropic Messages, POST /v1/messages, streaming, body bodies/anthropic-stream.json.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")
common.setup("anthropic", dir .. "bodies/anthropic-stream.json")
done = common.done
