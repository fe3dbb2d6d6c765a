// The OpenAI TypeScript SDK and the Vercel AI SDK against the gateway at argv[2], on the
// model argv[3]: what each client's default code paths send (the Responses API first),
// plain, streamed, a function-call loop, structured output through each client's own
// helper, and an error. Every check runs, whatever the others do; the last line printed is
// one JSON object: {check name: {ok, detail}}.
const OpenAI = require('openai').default;
const { zodResponseFormat, zodTextFormat } = require('openai/helpers/zod');
const { createOpenAI } = require('@ai-sdk/openai');
const { createAnthropic } = require('@ai-sdk/anthropic');
const ai = require('ai');
const { z } = require('zod');

const City = z.object({ name: z.string(), population: z.number().int() });
const WEATHER = {
  type: 'function',
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' } },
    required: ['city'],
    additionalProperties: false,
  },
  strict: true,
};

function expect(condition, detail) {
  if (!condition) throw new Error(detail);
}

async function main() {
  const [url, model] = process.argv.slice(2);
  const apiKey = 'th-test-key';
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });
  const openai = createOpenAI({ baseURL: `${url}/v1`, apiKey });
  const anthropic = createAnthropic({ baseURL: `${url}/v1`, apiKey });
  const results = {};
  async function check(name, body) {
    try {
      results[name] = { ok: true, detail: (await body()) ?? '' };
    } catch (error) {
      results[name] = { ok: false, detail: String(error && error.stack ? error.stack : error) };
    }
  }
  const question = 'Tell me how the aqueducts of Rome carried water over the hills.';

  // ---- the OpenAI TypeScript SDK
  await check('openai-js responses.create', async () => {
    const response = await client.responses.create({ model, input: question, max_output_tokens: 200 });
    expect(response.id.startsWith('resp_'), `id ${response.id}`);
    expect(response.status === 'completed', `status ${response.status}`);
    expect(response.output_text.length > 0, 'no output_text');
    expect(response.usage.input_tokens > 5, `input_tokens ${response.usage.input_tokens}`);
    return `${response.usage.input_tokens} in, ${response.usage.output_tokens} out`;
  });
  await check('openai-js responses.stream', async () => {
    const stream = client.responses.stream({ model, input: question });
    const kinds = [];
    let deltas = '';
    for await (const event of stream) {
      kinds.push(event.type);
      if (event.type === 'response.output_text.delta') deltas += event.delta;
    }
    const final = await stream.finalResponse();
    expect(kinds[0] === 'response.created', `first event ${kinds[0]}`);
    expect(kinds[kinds.length - 1] === 'response.completed', `last event ${kinds.at(-1)}`);
    expect(deltas === final.output_text && deltas.length > 0, 'deltas differ from the final text');
    return `${kinds.length} events`;
  });
  await check('openai-js function-call loop (previous_response_id)', async () => {
    const first = await client.responses.create({
      model,
      input: 'What is the weather in Rome?',
      tools: [WEATHER],
      tool_choice: 'required',
    });
    const calls = first.output.filter((item) => item.type === 'function_call');
    expect(calls.length === 1 && calls[0].name === 'get_weather', `calls ${JSON.stringify(calls)}`);
    expect('city' in JSON.parse(calls[0].arguments), `arguments ${calls[0].arguments}`);
    const second = await client.responses.create({
      model,
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: calls[0].call_id, output: 'sunny, 24 C' }],
      tools: [WEATHER],
      tool_choice: 'none',
    });
    expect(second.previous_response_id === first.id, 'previous_response_id not echoed');
    expect(second.output_text.length > 0, 'no answer after the tool result');
    expect(second.usage.input_tokens > first.usage.input_tokens, 'history not sent');
    return `${first.usage.input_tokens} then ${second.usage.input_tokens} input tokens`;
  });
  await check('openai-js responses.parse (zodTextFormat)', async () => {
    const parsed = await client.responses.parse({
      model,
      input: 'Name a city.',
      text: { format: zodTextFormat(City, 'city') },
    });
    const city = parsed.output_parsed;
    expect(city && typeof city.name === 'string' && Number.isInteger(city.population),
      `parsed ${JSON.stringify(city)}`);
    return JSON.stringify(city);
  });
  await check('openai-js chat.completions.create + stream', async () => {
    const whole = await client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: question }],
      max_tokens: 100,
    });
    expect(whole.choices[0].message.content.length > 0, 'no content');
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: question }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage = null;
    for await (const chunk of stream) {
      if (chunk.choices.length) text += chunk.choices[0].delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text.length > 0 && usage && usage.prompt_tokens > 5, `usage ${JSON.stringify(usage)}`);
    return `${usage.prompt_tokens} prompt tokens`;
  });
  await check('openai-js chat.completions.parse (zodResponseFormat)', async () => {
    const parsed = await client.chat.completions.parse({
      model,
      messages: [{ role: 'user', content: 'Name a city.' }],
      response_format: zodResponseFormat(City, 'city'),
    });
    const city = parsed.choices[0].message.parsed;
    expect(city && typeof city.name === 'string' && Number.isInteger(city.population),
      `parsed ${JSON.stringify(city)}`);
    return JSON.stringify(city);
  });
  await check('openai-js error class', async () => {
    try {
      await client.responses.create({ model, input: 'hi', previous_response_id: 'resp_nope' });
    } catch (error) {
      expect(error instanceof OpenAI.NotFoundError, `raised ${error.constructor.name}`);
      expect(error.code === 'previous_response_not_found', `code ${error.code}`);
      return `${error.status} ${error.code}`;
    }
    throw new Error('no error raised');
  });

  // ---- the Vercel AI SDK: @ai-sdk/openai (the Responses API by default, .chat for Chat
  // Completions) and @ai-sdk/anthropic
  await check('ai-sdk openai generateText', async () => {
    const result = await ai.generateText({ model: openai(model), prompt: question, maxRetries: 0 });
    expect(result.text.length > 0, 'no text');
    expect(result.usage.inputTokens > 5, `usage ${JSON.stringify(result.usage)}`);
    expect(result.finishReason === 'stop', `finishReason ${result.finishReason}`);
    return `${result.usage.inputTokens} in`;
  });
  await check('ai-sdk openai streamText', async () => {
    const result = ai.streamText({ model: openai(model), prompt: question, maxRetries: 0 });
    let text = '';
    for await (const part of result.textStream) text += part;
    const usage = await result.usage;
    expect(text.length > 0 && text === (await result.text), 'streamed text differs');
    expect(usage.inputTokens > 5, `usage ${JSON.stringify(usage)}`);
    return `${text.length} characters`;
  });
  await check('ai-sdk openai tool loop', async () => {
    let ran = 0;
    const result = await ai.generateText({
      model: openai(model),
      prompt: 'What is the weather in Rome?',
      maxRetries: 0,
      tools: {
        get_weather: ai.tool({
          description: 'The weather in a city',
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => { ran += 1; return `sunny in ${city}`; },
        }),
      },
      stopWhen: ai.stepCountIs(3),
      prepareStep: ({ stepNumber }) => ({ toolChoice: stepNumber === 0 ? 'required' : 'none' }),
    });
    expect(ran === 1, `the tool ran ${ran} times`);
    expect(result.steps.length === 2, `${result.steps.length} steps`);
    expect(result.text.length > 0, 'no final text');
    return `${result.steps.length} steps`;
  });
  await check('ai-sdk openai generateObject', async () => {
    const result = await ai.generateObject({
      model: openai(model), schema: City, prompt: 'Name a city.', maxRetries: 0,
    });
    expect(typeof result.object.name === 'string', `object ${JSON.stringify(result.object)}`);
    return JSON.stringify(result.object);
  });
  await check('ai-sdk openai.chat generateText + generateObject', async () => {
    const result = await ai.generateText({ model: openai.chat(model), prompt: question, maxRetries: 0 });
    expect(result.text.length > 0, 'no text');
    const object = await ai.generateObject({
      model: openai.chat(model), schema: City, prompt: 'Name a city.', maxRetries: 0,
    });
    expect(Number.isInteger(object.object.population), `object ${JSON.stringify(object.object)}`);
    return JSON.stringify(object.object);
  });
  await check('ai-sdk anthropic generateText + streamText', async () => {
    const whole = await ai.generateText({ model: anthropic(model), prompt: question, maxRetries: 0 });
    expect(whole.text.length > 0 && whole.usage.inputTokens > 5, `usage ${JSON.stringify(whole.usage)}`);
    const streamed = ai.streamText({ model: anthropic(model), prompt: question, maxRetries: 0 });
    let text = '';
    for await (const part of streamed.textStream) text += part;
    expect(text.length > 0, 'no streamed text');
    return `${whole.usage.inputTokens} in`;
  });
  await check('ai-sdk error', async () => {
    try {
      await ai.generateText({ model: openai('no-such-model'), prompt: 'hi', maxRetries: 0 });
    } catch (error) {
      expect(ai.APICallError.isInstance(error), `raised ${error.constructor.name}: ${error.message}`);
      expect(error.statusCode === 404, `status ${error.statusCode}`);
      return `${error.statusCode}`;
    }
    throw new Error('no error raised');
  });
  console.log(JSON.stringify(results));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
