// What the signed-in principal may do, from the `authorized_operations` of describe answers
// (KIP-430). A control is shown only when the broker says the operation is allowed; an answer
// without the field (an older broker) shows every control and leaves the refusal to the API.

/** Whether `operation` is allowed by a describe answer's authorized_operations. */
export function can(described, operation) {
  const ops = described && described.authorized_operations;
  if (!Array.isArray(ops)) return true;
  return ops.includes(operation) || ops.includes("ALL");
}
