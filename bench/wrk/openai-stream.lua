-- wrk -s: OpenAI Chat Completions, POST /v1/chat/completions, streaming, body bodies/openai-stream.json.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")
common.setup("openai", dir .. "bodies/openai-stream.json")
done = common.done
