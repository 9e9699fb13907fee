"""The StandardAuthorizer decision: Kafka's examples, then properties over random ACL sets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.security.acl import (
    AclBinding,
    AclBindingFilter,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)
from app.security.authorizer import AclSnapshot, AllowAllAuthorizer, StandardAuthorizer

T, G, C = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER
L, P = PatternType.LITERAL, PatternType.PREFIXED
ALLOW, DENY = Permission.ALLOW, Permission.DENY


def b(principal: str, rtype: ResourceType, name: str, op: Operation, perm: Permission = ALLOW,
      pattern: PatternType = L, host: str = "*") -> AclBinding:
    return AclBinding(principal, host, rtype, pattern, name, op, perm)


def authorizer(*bindings: AclBinding, allow_everyone: bool = False,
               super_users: tuple[str, ...] = ("User:admin",)) -> StandardAuthorizer:
    snapshot = AclSnapshot(bindings)
    return StandardAuthorizer(lambda: snapshot, super_users=super_users,
                              allow_everyone_if_no_acl_found=allow_everyone)


def test_no_acl_denies_unless_allow_everyone() -> None:
    assert not authorizer().authorize("User:a", "1.2.3.4", Operation.READ, T, "t")
    assert authorizer(allow_everyone=True).authorize("User:a", "1.2.3.4", Operation.READ, T, "t")


def test_first_acl_closes_the_resource_with_allow_everyone() -> None:
    open_ = authorizer(allow_everyone=True)
    closed = authorizer(b("User:b", T, "t", Operation.READ), allow_everyone=True)
    assert open_.authorize("User:a", "h", Operation.WRITE, T, "t")
    assert not closed.authorize("User:a", "h", Operation.WRITE, T, "t")
    assert closed.authorize("User:a", "h", Operation.WRITE, T, "other")  # another resource stays open


def test_internal_topics_are_never_open_by_default() -> None:
    assert not authorizer(allow_everyone=True).authorize("User:a", "h", Operation.READ, T, "__audit")


def test_super_users_are_allowed_even_against_a_deny() -> None:
    a = authorizer(b("User:admin", T, "t", Operation.ALL, DENY))
    assert a.authorize("User:admin", "h", Operation.DELETE, T, "t")


def test_implied_describe_for_allow_only() -> None:
    for op in (Operation.READ, Operation.WRITE, Operation.DELETE, Operation.ALTER):
        assert authorizer(b("User:a", T, "t", op)).authorize("User:a", "h", Operation.DESCRIBE, T, "t")
    assert not authorizer(b("User:a", T, "t", Operation.CREATE)).authorize(
        "User:a", "h", Operation.DESCRIBE, T, "t")
    assert authorizer(b("User:a", T, "t", Operation.ALTER_CONFIGS)).authorize(
        "User:a", "h", Operation.DESCRIBE_CONFIGS, T, "t")
    # a DENY READ does not deny DESCRIBE
    a = authorizer(b("User:a", T, "t", Operation.DESCRIBE), b("User:a", T, "t", Operation.READ, DENY))
    assert a.authorize("User:a", "h", Operation.DESCRIBE, T, "t")
    assert not a.authorize("User:a", "h", Operation.READ, T, "t")


def test_prefixed_deny_beats_literal_allow() -> None:
    a = authorizer(b("User:a", T, "a.", Operation.ALL, DENY, P), b("User:a", T, "a.b", Operation.ALL))
    assert not a.authorize("User:a", "h", Operation.READ, T, "a.b")


def test_wildcards_principal_host_and_name() -> None:
    a = authorizer(b("User:*", T, "*", Operation.READ, host="10.0.0.1"))
    assert a.authorize("User:x", "10.0.0.1", Operation.READ, T, "anything")
    assert not a.authorize("User:x", "10.0.0.2", Operation.READ, T, "anything")
    assert not a.authorize("User:x", "10.0.0.1", Operation.READ, G, "anything")


def test_all_in_a_deny_denies_everything() -> None:
    a = authorizer(b("User:a", T, "t", Operation.ALL), b("User:a", T, "t", Operation.ALL, DENY))
    assert not any(a.authorize("User:a", "h", op, T, "t") for op in Operation)


def test_authorize_any_for_idempotent_producers() -> None:
    a = authorizer(b("User:a", T, "x.", Operation.WRITE, pattern=P))
    assert a.authorize_any("User:a", "h", Operation.WRITE, T)
    assert not a.authorize_any("User:b", "h", Operation.WRITE, T)
    denied = authorizer(b("User:a", T, "x.", Operation.WRITE, pattern=P),
                        b("User:a", T, "*", Operation.WRITE, DENY))
    assert not denied.authorize_any("User:a", "h", Operation.WRITE, T)


def test_authorized_operations_lists_implied_ones() -> None:
    ops = authorizer(b("User:a", T, "t", Operation.READ)).authorized_operations("User:a", "h", T, "t")
    assert ops == [Operation.READ, Operation.DESCRIBE]
    assert Operation.ALTER in AllowAllAuthorizer().authorized_operations("User:a", "h", T, "t")


def test_filters_like_kafka_acls() -> None:
    bindings = [b("User:a", T, "a.", Operation.READ, pattern=P), b("User:a", T, "a.b", Operation.WRITE),
                b("User:b", G, "g", Operation.READ)]
    assert [x for x in bindings if AclBindingFilter(resource_type=T).matches(x)] == bindings[:2]
    match = AclBindingFilter(pattern_type="MATCH", resource_name="a.b")
    assert [x for x in bindings if match.matches(x)] == bindings[:2]
    exact = AclBindingFilter(pattern_type="ANY", resource_name="a.b")
    assert [x for x in bindings if exact.matches(x)] == bindings[1:2]


# --- properties -------------------------------------------------------------------------------

PRINCIPALS = st.sampled_from(["User:a", "User:b", "User:*"])
NAMES = st.sampled_from(["a", "a.b", "a.c", "b", "*", "a."])
bindings = st.builds(
    AclBinding,
    principal=PRINCIPALS,
    host=st.sampled_from(["*", "10.0.0.1"]),
    resource_type=st.sampled_from([T, G]),
    pattern_type=st.sampled_from([L, P]),
    resource_name=NAMES,
    operation=st.sampled_from(list(Operation)),
    permission=st.sampled_from([ALLOW, DENY]),
)
requests = st.tuples(
    st.sampled_from(["User:a", "User:b", "User:admin"]), st.sampled_from(["10.0.0.1", "10.0.0.2"]),
    st.sampled_from([op for op in Operation if op is not Operation.ALL]), st.sampled_from([T, G]),
    st.sampled_from(["a", "a.b", "a.c", "b"]),
)


def _allowed(acls: list[AclBinding], request: tuple[str, str, Operation, ResourceType, str],
             allow_everyone: bool = False) -> bool:
    return authorizer(*acls, allow_everyone=allow_everyone).authorize(*request)


@given(st.lists(bindings, max_size=8), bindings, requests)
def test_adding_an_allow_never_removes_access(acls: list[AclBinding], extra: AclBinding,
                                              request: tuple[str, str, Operation, ResourceType, str]) -> None:
    allow = AclBinding(extra.principal, extra.host, extra.resource_type, extra.pattern_type,
                       extra.resource_name, extra.operation, ALLOW)
    if _allowed(acls, request):
        assert _allowed([*acls, allow], request)


@given(st.lists(bindings, max_size=8), bindings, requests)
def test_adding_a_deny_never_grants_access(acls: list[AclBinding], extra: AclBinding,
                                           request: tuple[str, str, Operation, ResourceType, str]) -> None:
    deny = AclBinding(extra.principal, extra.host, extra.resource_type, extra.pattern_type,
                      extra.resource_name, extra.operation, DENY)
    if not _allowed(acls, request):
        assert not _allowed([*acls, deny], request)


@given(st.lists(bindings, max_size=8), requests, st.booleans())
def test_super_users_are_always_allowed(acls: list[AclBinding],
                                        request: tuple[str, str, Operation, ResourceType, str],
                                        allow_everyone: bool) -> None:
    assert _allowed(acls, ("User:admin", *request[1:]), allow_everyone)


@given(bindings, requests)
def test_with_allow_everyone_a_first_acl_closes_the_resource(
    first: AclBinding, request: tuple[str, str, Operation, ResourceType, str]
) -> None:
    principal, host, _op, rtype, name = request
    assert _allowed([], request, allow_everyone=True)
    covers = first.matches_resource(rtype, name)
    names_caller = first.matches_caller(principal, host)
    if covers and principal != "User:admin" and not names_caller:
        assert not _allowed([first], request, allow_everyone=True)
    if not covers:
        assert _allowed([first], request, allow_everyone=True)


def test_remembered_decisions_follow_a_new_snapshot() -> None:
    current = [AclSnapshot(())]
    a = StandardAuthorizer(lambda: current[0])
    assert not a.authorize("User:a", "h", Operation.READ, T, "t")
    current[0] = AclSnapshot([b("User:a", T, "t", Operation.READ)], version=1)
    assert a.authorize("User:a", "h", Operation.READ, T, "t")
    deny = b("User:a", T, "t", Operation.ALL, DENY)
    current[0] = AclSnapshot([b("User:a", T, "t", Operation.READ), deny], 2)
    assert not a.authorize("User:a", "h", Operation.READ, T, "t")


def test_prefixes_of_every_length_are_found() -> None:
    acls = [b("User:a", T, p, Operation.READ, pattern=P) for p in ("", "x", "xy.", "xy.z", "long-prefix")]
    snapshot = AclSnapshot(acls)
    assert {x.resource_name for x in snapshot.covering(T, "xy.z1")} == {"", "x", "xy.", "xy.z"}
    assert {x.resource_name for x in snapshot.covering(T, "x")} == {"", "x"}
    assert {x.resource_name for x in snapshot.covering(G, "x")} == set()
