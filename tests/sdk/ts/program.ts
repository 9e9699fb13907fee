// A TypeScript service using tidelog through two generated clients, with no casts and no `any`:
// @hey-api/openapi-ts (gen/hey) and openapi-typescript + openapi-fetch (gen/openapi-typescript).
// It prints one JSON object of what it saw; tests/sdk/test_typescript_sdk.py checks it.
import { EventSource } from "eventsource";
import createClient from "openapi-fetch";

import type { FetchedRecord } from "./gen/hey";
import { ErrorCode, JoinInAuto_offset_reset, type paths } from "./gen/openapi-typescript/schema";
import {
  commitAndReadOffsets,
  createTopic,
  fail,
  isUnknownTopic,
  leaveGroup,
  pollRecords,
  produceWithHeaders,
  useBroker,
} from "./hey-steps";

const broker = process.argv[2];
const topic = "ts-orders";
const group = "ts-service";

useBroker(broker);
// Answers in JSON only: NDJSON is an alternative media type this client never asks for.
const api = createClient<paths, "application/json">({ baseUrl: broker });

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// An SSE event's data is text: it becomes a FetchedRecord only after checking its shape.
function asFetchedRecord(value: unknown): FetchedRecord | null {
  if (!isObject(value)) return null;
  const { topic, partition, offset, timestamp, timestamp_type, key, headers } = value;
  if (typeof topic !== "string" || typeof partition !== "number" || typeof offset !== "number") return null;
  if (typeof timestamp !== "number") return null;
  if (timestamp_type !== "CreateTime" && timestamp_type !== "LogAppendTime") return null;
  if (!Array.isArray(headers)) return null;
  const checked: FetchedRecord["headers"] = [];
  for (const header of headers) {
    if (!isObject(header) || typeof header.key !== "string") return null;
    const headerValue = header.value;
    if (headerValue !== null && headerValue !== undefined && typeof headerValue !== "string") return null;
    checked.push({ key: header.key, value: headerValue });
  }
  return { topic, partition, offset, timestamp, timestamp_type, key, value: value.value, headers: checked };
}

function firstRecordEvents(url: string, count: number): Promise<FetchedRecord[]> {
  return new Promise((resolve, reject) => {
    const got: FetchedRecord[] = [];
    const source = new EventSource(url);
    const timer = setTimeout(() => {
      source.close();
      reject(new Error(`timed out after ${got.length} SSE events`));
    }, 30_000);
    source.addEventListener("record", (event: MessageEvent<string>) => {
      const parsed: unknown = JSON.parse(event.data);
      const record = asFetchedRecord(parsed);
      if (record === null) {
        source.close();
        clearTimeout(timer);
        reject(new Error(`not a FetchedRecord: ${event.data}`));
        return;
      }
      got.push(record);
      if (got.length === count) {
        source.close();
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

async function main(): Promise<void> {
  const out: Record<string, unknown> = {};

  // Create a topic and produce with headers (hey-api).
  out.created = await createTopic(topic);
  out.offsets = await produceWithHeaders(topic);

  // Fetch (openapi-fetch).
  const fetched = await api.GET("/v1/topics/{topic}/partitions/{partition}/records", {
    params: { path: { topic, partition: 0 }, query: { offset: 0 } },
  });
  if (fetched.data === undefined) fail(`fetch: ${JSON.stringify(fetched.error)}`);
  const first: FetchedRecord | undefined = fetched.data.records[0];
  out.fetched = fetched.data.records.map((record) => record.value);
  out.fetchedHeader = first?.headers[0]?.value ?? null;
  out.highWatermark = fetched.data.high_watermark;

  // Join a group from the earliest offset (openapi-fetch; assignor left to its default).
  const joined = await api.POST("/v1/groups/{group}/members", {
    params: { path: { group } },
    body: { topics: [topic], auto_offset_reset: JoinInAuto_offset_reset.earliest },
  });
  if (joined.data === undefined) fail(`join: ${JSON.stringify(joined.error)}`);
  const member = joined.data;

  // Poll, commit, read the committed offsets and leave (hey-api).
  const polled = await pollRecords(group, member.member_id);
  out.polledKeys = polled.keys;
  out.position = polled.position;
  out.committed = await commitAndReadOffsets(group, member.member_id, member.generation, polled.position);
  out.leftStatus = await leaveGroup(group, member.member_id);

  // SSE: the topic's records in `record` events (Node's eventsource package).
  const events = await firstRecordEvents(`${broker}/v1/topics/${topic}/events?from=earliest`, 2);
  out.sse = events.map((record) => ({ offset: record.offset, key: record.key, value: record.value }));

  // A problem+json error, branched on by its enum name in both clients.
  out.heyUnknownTopic = await isUnknownTopic("no-such-topic");
  const missingToo = await api.GET("/v1/topics/{topic}", { params: { path: { topic: "no-such-topic" } } });
  if (missingToo.error === undefined) fail("get of a missing topic succeeded");
  if (!("error_code" in missingToo.error)) fail(`not a problem: ${JSON.stringify(missingToo.error)}`);
  out.otUnknownTopic = missingToo.error.error_code === ErrorCode.UNKNOWN_TOPIC;
  out.errorCode = missingToo.error.error_code;

  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
