-- wrk -s: Anthropic Messages, POST /v1/messages, body bodies/anthropic.json.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")
common.setup("anthropic", dir .. "bodies/anthropic.json")
done = common.done
