// The TypeScript SDK's message threads against the gateway at argv[2]: `thread().send()`
// twice and a tool runner of three turns. Prints what the test checks, as one JSON line:
// the `thread` field of every request sent, the replies' input tokens and stop reasons.
const Anthropic = require('@anthropic-ai/sdk').default;
const { betaTool } = require('@anthropic-ai/sdk/helpers/beta/json-schema');

async function main() {
  const [url, model, question] = process.argv.slice(2);
  const sent = [];
  const client = new Anthropic({
    baseURL: url,
    apiKey: 'th-test-key',
    maxRetries: 0,
    fetch: async (input, init) => {
      if (String(input).endsWith('/v1/messages')) sent.push(JSON.parse(init.body));
      return fetch(input, init);
    },
  });

  const thread = client.beta.messages.thread({ model, max_tokens: 200 });
  const first = await thread.send({ role: 'user', content: question });
  const second = await thread.send({ role: 'user', content: 'And then?' });
  const threadRequests = sent.splice(0);

  let readings = 0;
  const measure = betaTool({
    name: 'measure',
    description: 'Measure the water flow at a site.',
    inputSchema: {
      type: 'object',
      properties: { site: { type: 'string' } },
      required: ['site'],
    },
    run: async ({ site }) => `reading-${++readings} at ${site}`,
  });
  const replies = [];
  const runner = client.beta.messages.toolRunner({
    model,
    max_tokens: 300,
    tools: [measure],
    messages: [{ role: 'user', content: question }],
  });
  for await (const message of runner) replies.push(message);

  console.log(
    JSON.stringify({
      thread: {
        first: { id: first.id, content: first.content, input_tokens: first.usage.input_tokens },
        second: { id: second.id, input_tokens: second.usage.input_tokens },
        requests: threadRequests.map((body) => ({ thread: body.thread, messages: body.messages.length })),
      },
      runner: {
        stop_reasons: replies.map((m) => m.stop_reason),
        last_text: replies.at(-1).content[0].text,
        requests: sent.map((body) => ({ thread: body.thread, messages: body.messages.length, tools: 'tools' in body })),
      },
    }),
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
