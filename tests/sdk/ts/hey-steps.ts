// The steps of program.ts done with the @hey-api/openapi-ts client (gen/hey): typed answers, no casts.
import {
  ErrorCode,
  groupsCommitOffsets,
  groupsGetOffsets,
  groupsLeaveGroup,
  groupsPollRecords,
  recordsProduceToPartition,
  topicsCreateTopic,
  topicsGetTopic,
} from "./gen/hey";
import { client } from "./gen/hey/client.gen";

export interface Position {
  topic: string;
  partition: number;
  offset: number;
}

export function fail(message: string): never {
  throw new Error(message);
}

export function useBroker(url: string): void {
  client.setConfig({ baseUrl: url });
}

export async function createTopic(name: string): Promise<string> {
  const created = await topicsCreateTopic({ body: { name, partitions: 1 } });
  if (created.data === undefined) fail(`create: ${JSON.stringify(created.error)}`);
  return created.data.name;
}

// The 200 answer is ProduceResponse (not JSON | string): NDJSON is an alternative media type.
export async function produceWithHeaders(topic: string): Promise<Array<number | null | undefined>> {
  const produced = await recordsProduceToPartition({
    path: { topic, partition: 0 },
    body: {
      records: [
        { key: "k1", value: { n: 1 }, headers: [{ key: "trace", value: "t-1" }] },
        { key: "k2", value: { n: 2 } },
      ],
    },
  });
  if (produced.data === undefined) fail(`produce: ${JSON.stringify(produced.error)}`);
  return produced.data.results.map((result) => result.offset);
}

// A poll's records are FetchedRecord and its positions have every field.
export async function pollRecords(group: string, memberId: string): Promise<{ keys: unknown[]; position: Position }> {
  const polled = await groupsPollRecords({ path: { group, member_id: memberId }, query: { max_wait_ms: 2000 } });
  if (polled.data === undefined) fail(`poll: ${JSON.stringify(polled.error)}`);
  const position = polled.data.positions[0];
  if (position === undefined) fail("poll: no position");
  return {
    keys: polled.data.records.map((record) => record.key),
    position: { topic: position.topic, partition: position.partition, offset: position.offset },
  };
}

export async function commitAndReadOffsets(
  group: string, memberId: string, generation: number, position: Position,
): Promise<Array<{ partition: number; offset: number; lag: number | null }>> {
  const committed = await groupsCommitOffsets({
    path: { group },
    body: { member_id: memberId, generation, offsets: [position] },
  });
  if (committed.error !== undefined) fail(`commit: ${JSON.stringify(committed.error)}`);
  const offsets = await groupsGetOffsets({ path: { group } });
  if (offsets.data === undefined) fail(`offsets: ${JSON.stringify(offsets.error)}`);
  return offsets.data.offsets.map((o) => ({ partition: o.partition, offset: o.offset, lag: o.lag }));
}

export async function leaveGroup(group: string, memberId: string): Promise<number> {
  const left = await groupsLeaveGroup({ path: { group, member_id: memberId } });
  return left.response.status;
}

// A problem+json answer's error_code, compared by the enum's name.
export async function isUnknownTopic(topic: string): Promise<boolean> {
  const missing = await topicsGetTopic({ path: { topic } });
  if (missing.error === undefined) fail("get of a missing topic succeeded");
  if (!("error_code" in missing.error)) fail(`not a problem: ${JSON.stringify(missing.error)}`);
  return missing.error.error_code === ErrorCode.UNKNOWN_TOPIC;
}
