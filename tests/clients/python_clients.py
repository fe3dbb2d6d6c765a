"""Python client libraries nobody here wrote — LangChain (langchain-openai,
langchain-anthropic), LiteLLM as a client, simonw's `llm` and instructor — against the
gateway at argv[1] on each model argv[2:]: their default code paths, plain, streamed, a tool
call, structured output by the library's own helper, and an error. Run by
tests/server/test_python_clients.py in its own virtualenv (`.venv-clients`, from
tests/clients/requirements.txt: instructor pins an older `openai` than the gateway's tests
use); one process for every model, since importing the libraries is the slow part. Every
check runs, whatever the others do; the last line printed is one JSON object:
{model: {check name: {"ok": bool, "detail": str}}}."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

# LiteLLM would fetch its model price list from the internet at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

KEY = "th-test-key"
QUESTION = "Tell me how the aqueducts of Rome carried water over the hills."


class City(BaseModel):
    name: str
    population: int


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def expect(condition: object, detail: str) -> None:
    if not condition:
        raise AssertionError(detail)


def checks(url: str, model: str) -> dict[str, Callable[[], str]]:
    import anthropic
    import instructor
    import litellm
    import llm
    import openai
    from langchain_anthropic import ChatAnthropic
    from langchain_openai import ChatOpenAI

    litellm.suppress_debug_info = True

    def langchain_openai_invoke_and_stream() -> str:
        chat = ChatOpenAI(model=model, base_url=url + "/v1", api_key=KEY, max_retries=0)
        answer = chat.invoke(QUESTION)
        expect(answer.content, "no content")
        expect(answer.usage_metadata and answer.usage_metadata["input_tokens"] > 5, "no usage")
        streamed = "".join(str(chunk.content) for chunk in chat.stream(QUESTION))
        expect(streamed, "nothing streamed")
        return f"{answer.usage_metadata['input_tokens']} in"

    def langchain_openai_tools_and_structured() -> str:
        chat = ChatOpenAI(model=model, base_url=url + "/v1", api_key=KEY, max_retries=0)
        called = chat.bind_tools([get_weather], tool_choice="required").invoke("Rome weather?")
        expect([c["name"] for c in called.tool_calls] == ["get_weather"], f"{called.tool_calls}")
        city = chat.with_structured_output(City).invoke("Name a city.")
        expect(isinstance(city, City), f"got {city!r}")
        return city.model_dump_json()

    def langchain_openai_responses_api() -> str:
        chat = ChatOpenAI(
            model=model, base_url=url + "/v1", api_key=KEY, max_retries=0, use_responses_api=True
        )
        answer = chat.invoke(QUESTION)
        expect(answer.text, "no text")
        called = chat.bind_tools([get_weather], tool_choice="required").invoke("Rome weather?")
        expect([c["name"] for c in called.tool_calls] == ["get_weather"], f"{called.tool_calls}")
        return f"{answer.usage_metadata['input_tokens']} in"

    def langchain_anthropic_all() -> str:
        chat = ChatAnthropic(model=model, base_url=url, api_key=KEY, max_retries=0)
        answer = chat.invoke(QUESTION)
        expect(answer.content and answer.usage_metadata["input_tokens"] > 5, "no answer")
        streamed = "".join(str(chunk.content) for chunk in chat.stream(QUESTION))
        expect(streamed, "nothing streamed")
        city = chat.with_structured_output(City).invoke("Name a city.")
        expect(isinstance(city, City), f"got {city!r}")
        return city.model_dump_json()

    def litellm_client() -> str:
        whole = litellm.completion(
            model=f"openai/{model}",
            api_base=url + "/v1",
            api_key=KEY,
            messages=[{"role": "user", "content": QUESTION}],
        )
        expect(whole.choices[0].message.content, "no content (openai/)")
        chunks = litellm.completion(
            model=f"openai/{model}",
            api_base=url + "/v1",
            api_key=KEY,
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
        )
        expect("".join(c.choices[0].delta.content or "" for c in chunks), "nothing streamed")
        native = litellm.completion(
            model=f"anthropic/{model}",
            api_base=url,
            api_key=KEY,
            messages=[{"role": "user", "content": QUESTION}],
            max_tokens=100,
        )
        expect(native.choices[0].message.content, "no content (anthropic/)")
        return f"{whole.usage.prompt_tokens} prompt tokens"

    def litellm_error() -> str:
        try:
            litellm.completion(
                model="openai/no-such-model",
                api_base=url + "/v1",
                api_key=KEY,
                messages=[{"role": "user", "content": "hi"}],
                num_retries=0,
            )
        except litellm.NotFoundError as error:
            return f"{type(error).__name__} {error.status_code}"
        raise AssertionError("no error raised")

    def llm_prompt_and_schema() -> str:
        with tempfile.TemporaryDirectory() as directory:
            Path(directory, "extra-openai-models.yaml").write_text(
                json.dumps(
                    [
                        {
                            "model_id": "gateway",
                            "model_name": model,
                            "api_base": url + "/v1",
                            "supports_schema": True,
                        }
                    ]
                )
            )
            os.environ["LLM_USER_PATH"] = directory
            gateway = llm.get_model("gateway")
            text = gateway.prompt(QUESTION, key=KEY).text()
            expect(text, "no text")
            streamed = "".join(gateway.prompt(QUESTION, key=KEY, stream=True))
            expect(streamed, "nothing streamed")
            parsed = City.model_validate_json(
                gateway.prompt("Name a city.", key=KEY, schema=City).text()
            )
            return parsed.model_dump_json()

    def instructor_openai() -> str:
        client = instructor.from_openai(
            openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
        )
        city = client.chat.completions.create(
            model=model,
            response_model=City,
            messages=[{"role": "user", "content": "Name a city."}],
            max_retries=0,
        )
        expect(isinstance(city, City), f"got {city!r}")
        return city.model_dump_json()

    def instructor_anthropic() -> str:
        client = instructor.from_anthropic(
            anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0)
        )
        city = client.messages.create(
            model=model,
            response_model=City,
            max_tokens=200,
            messages=[{"role": "user", "content": "Name a city."}],
            max_retries=0,
        )
        expect(isinstance(city, City), f"got {city!r}")
        return city.model_dump_json()

    return {
        "langchain-openai invoke + stream": langchain_openai_invoke_and_stream,
        "langchain-openai bind_tools + with_structured_output": langchain_openai_tools_and_structured,
        "langchain-openai use_responses_api": langchain_openai_responses_api,
        "langchain-anthropic invoke + stream + with_structured_output": langchain_anthropic_all,
        "litellm completion (openai/, anthropic/, stream)": litellm_client,
        "litellm NotFoundError": litellm_error,
        "llm prompt + stream + schema": llm_prompt_and_schema,
        "instructor from_openai": instructor_openai,
        "instructor from_anthropic": instructor_anthropic,
    }


def main(argv: list[str]) -> int:
    url, models = argv[1], argv[2:]
    results: dict[str, dict[str, Any]] = {}
    for model in models:
        results[model] = {}
        for name, check in checks(url, model).items():
            try:
                results[model][name] = {"ok": True, "detail": check()}
            except Exception:
                results[model][name] = {"ok": False, "detail": traceback.format_exc(limit=6)}
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
