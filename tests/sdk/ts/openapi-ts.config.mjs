// @hey-api/openapi-ts: a fetch client and types from the committed spec, enums as JavaScript objects
// (ErrorCode.UNKNOWN_TOPIC), written to gen/hey (the test passes the spec's path in TIDELOG_SPEC).
export default {
  input: process.env.TIDELOG_SPEC,
  output: "gen/hey",
  plugins: [
    "@hey-api/client-fetch",
    { name: "@hey-api/typescript", enums: "javascript" },
    "@hey-api/sdk",
  ],
};
