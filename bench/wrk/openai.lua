-- wrk -s: OpenAI Chat Completions, POST /v1/chat/completions, body bodies/openai.json.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")
common.setup("openai", dir .. "bodies/openai.json")
done = common.done
