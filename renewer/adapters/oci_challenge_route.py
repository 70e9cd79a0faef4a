"""``ChallengeRouter`` for classic OCI load balancers: the http-01 path, with no human step.

Let's Encrypt fetches ``http://<name>/.well-known/acme-challenge/<token>`` on port 80 and follows
redirects (up to 10, to http/https on ports 80/443, without validating an https target's
certificate). The route sends that path to the token backend set (``oci.challengeBackendSet``,
which Terraform creates with the token server) and nothing else changes. Per shape of the
load balancer's port-80 listener:

a. it forwards everything to the application (a default backend set, no routing policy): our
   routing policy ``<prefix>_challenge`` (one rule) is created if absent and attached to it;
b. it redirects everything to HTTPS with a rule set: rule sets apply before routing (the
   emulator's reading; OCI's documentation does not order them, so we cope with both), so the
   CA arrives, after the redirect, at the HTTPS listeners on port 443. The route is put there
   too (their routing policy gets our rule first, or ours is attached). That changes the
   least: a REDIRECT rule cannot forward, nothing can exempt a path from a prefix redirect,
   and the user's rule set stays exactly as it is;
c. it already has a routing policy (one per listener): our rule is inserted first in it, every
   rule of theirs stays, in order (a policy shared with other listeners gets it there too; it
   only ever matches the challenge path);
d. there is no port-80 listener: one named ``<prefix>-http01`` is created whose default backend
   set is the token backend set, so it answers the challenge path and nothing else (the token
   server answers 404 elsewhere). The subnet's security rules must admit port 80.

Refused before any order, with the reason and the way out: a private load balancer
(``isPrivate``: the CA cannot reach it), a missing token backend set, a listener on a path
route set (deprecated; no rule can be put first there), a redirect of the challenge path that
goes elsewhere than this load balancer's HTTPS port.

Writing follows the HTTPS switch's guarantees (:mod:`renewer.adapters.oci_load_balancer`):
each change is a whole-object read-modify-write (``UpdateListener`` and
``UpdateRoutingPolicy`` replace the object) with ``if-match`` = the load balancer's ETag (one
412 re-reads and retries), one mutation at a time per load balancer (the deployer's lock), a
wait for each work request, and a read-back: the listener equal to what it was except
``routingPolicyName``, the policy's rules our rule followed by theirs unchanged.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from renewer import naming
from renewer.adapters.oci_clients import OciClients, translate
from renewer.adapters.oci_load_balancer import LoadBalancerDeployer, carry_over
from renewer.clock import Clock
from renewer.errors import ConfigError, DeploymentError, TransientError
from renewer.ports import ChallengeRouteStatus

# isort: split
import oci

logger = logging.getLogger(__name__)

CHALLENGE_PATH = "/.well-known/acme-challenge/"
CONDITION = f"any(http.request.url.path sw (i '{CHALLENGE_PATH}'))"
FORWARD = "FORWARD_TO_BACKENDSET"
_HTTP_PORT, _HTTPS_PORT = 80, 443
_HTTP_PROTOCOLS = ("HTTP", "HTTP2")
_PRECONDITION_FAILED = 412
_SUCCEEDED, _FAILED = "SUCCEEDED", "FAILED"
_FIRST_POLL = 0.1
_PROBE = CHALLENGE_PATH + "token"  # a request path the CA sends

SdkModel = Any  # an ``oci.load_balancer.models`` instance (the SDK ships no type hints)


def lb_name(prefix: str) -> str:
    """``prefix`` as routing-policy and rule names take it (letters, digits, ``_``)."""
    return prefix.replace("-", "_")


@dataclass(frozen=True, slots=True)
class _Step:
    """One change: ``kind`` ∈ create_policy, insert_rule, attach, create_listener."""

    kind: str
    target: str  # the policy or listener it concerns
    policy: str = ""  # attach: the policy to attach

    def describe(self, lb_id: str) -> str:
        if self.kind == "create_policy":
            return f"create routing policy {self.target} on load balancer {lb_id}"
        if self.kind == "insert_rule":
            return f"put the challenge rule first in routing policy {self.target}"
        if self.kind == "attach":
            return f"attach routing policy {self.policy} to listener {self.target}"
        return f"create port-80 listener {self.target} for the challenge path only"


class LoadBalancerChallengeRoute:
    """:class:`~renewer.ports.ChallengeRouter` over the real SDK (see the module docstring).

    Args:
        clients: the OCI clients (only ``load_balancer`` is used).
        backend_set: the token backend set's name on every load balancer.
        prefix: the renewer's name prefix: our policy ``<prefix>_challenge``, our rule
            ``<prefix>_http01``, our listener ``<prefix>-http01``.
        clock: work-request polling and deadlines.
        poll_interval: seconds between two reads of a work request.
        address_override: the sandbox's ``(lb_id, port) -> (host, local port)`` (the same
            map VERIFY uses): a redirect naming the local port of a listener port 443 lands
            on that listener. None in a tenancy, where only 443 (or no port) does.

    """

    def __init__(
        self,
        clients: OciClients,
        *,
        backend_set: str,
        prefix: str = naming.DEFAULT_PREFIX,
        clock: Clock,
        poll_interval: float = 2.0,
        address_override: Callable[[str, int], tuple[str, int] | None] | None = None,
    ) -> None:
        prefix = naming.check_prefix(prefix)
        self._clients = clients
        self._backend_set = backend_set
        self.policy_name = f"{lb_name(prefix)}_challenge"
        self.rule_name = f"{lb_name(prefix)}_http01"
        self.listener_name = f"{prefix}-http01"
        self._clock = clock
        self._poll_interval = poll_interval
        self._address_override = address_override

    # ------------------------------------------------------------------ ChallengeRouter

    def inspect(self, load_balancer_id: str, dns_names: tuple[str, ...]) -> ChallengeRouteStatus:
        """See :class:`~renewer.ports.ChallengeRouter`."""
        load_balancer, _ = self._read(load_balancer_id)
        steps, refusal = self._plan(load_balancer, dns_names)
        return ChallengeRouteStatus(
            load_balancer_id,
            changes=tuple(s.describe(load_balancer_id) for s in steps),
            refusal=refusal,
        )

    def ensure(
        self, load_balancer_id: str, dns_names: tuple[str, ...], *, deadline: float
    ) -> ChallengeRouteStatus:
        """See :class:`~renewer.ports.ChallengeRouter`.

        Raises:
            DeploymentError: a work request FAILED, or the read-back differs from what was
                written (another field changed, a rule of theirs moved or changed).
            TransientError: throttling, 5xx, the deadline reached.

        """
        with self._mutation(load_balancer_id, deadline):
            load_balancer, _ = self._read(load_balancer_id)
            steps, refusal = self._plan(load_balancer, dns_names)
            if refusal is not None or not steps:
                return ChallengeRouteStatus(load_balancer_id, refusal=refusal)
            work_requests = [self._apply(load_balancer_id, step, deadline) for step in steps]
            after, _ = self._read(load_balancer_id)
            self._verify(load_balancer_id, load_balancer, after, steps, dns_names)
        done = tuple(s.describe(load_balancer_id) for s in steps)
        logger.info(
            "challenge_route changed lb=%s changes=%d work_requests=%s",
            load_balancer_id,
            len(done),
            ",".join(work_requests),
        )
        return ChallengeRouteStatus(
            load_balancer_id, changes=done, work_requests=tuple(work_requests)
        )

    # ------------------------------------------------------------------ planning: reads only

    def _plan(
        self, load_balancer: SdkModel, dns_names: Sequence[str]
    ) -> tuple[list[_Step], str | None]:
        lb_id = load_balancer.id
        refusal = self._refusal(load_balancer)
        if refusal is not None:
            return [], refusal
        listeners = load_balancer.listeners or {}
        http = [
            listener
            for listener in listeners.values()
            if listener.port == _HTTP_PORT
            and listener.ssl_configuration is None
            and listener.protocol in _HTTP_PROTOCOLS
        ]
        if not http:
            if self.listener_name in listeners:
                return [], (
                    f"load balancer {lb_id} has a listener {self.listener_name!r} that is not"
                    " a plain HTTP listener on port 80; rename or remove it"
                )
            return [_Step("create_listener", self.listener_name)], None
        routed: dict[str, SdkModel] = {}
        for listener in http:
            routed[listener.name] = listener
            redirect = _challenge_redirect(load_balancer, listener)
            if redirect is None:
                continue
            where = _redirect_lands_here(redirect, dns_names, self._https_ports(lb_id))
            https = [
                other
                for other in listeners.values()
                if other.port == _HTTPS_PORT and other.ssl_configuration is not None
            ]
            if where is not None or not https:
                return [], (
                    f"listener {listener.name} of load balancer {lb_id} redirects the challenge"
                    f" path {where or 'to HTTPS, but no listener serves port 443'}; the CA"
                    " follows redirects only to ports 80/443: route"
                    f" {CHALLENGE_PATH} to backend set {self._backend_set} yourself"
                )
            routed.update({other.name: other for other in https})
        steps: list[_Step] = []
        for name in sorted(routed):
            listener = routed[name]
            if listener.path_route_set_name:
                return [], (
                    f"listener {name} of load balancer {lb_id} uses path route set"
                    f" {listener.path_route_set_name} (deprecated), where no rule can be put"
                    f" first: add a path route for {CHALLENGE_PATH} to backend set"
                    f" {self._backend_set}, or move the listener to a routing policy"
                )
            steps += self._listener_steps(load_balancer, listener, steps)
        return steps, None

    def _refusal(self, load_balancer: SdkModel) -> str | None:
        """Why http-01 cannot work on ``load_balancer`` whatever we change; None when it can."""
        lb_id = load_balancer.id
        if load_balancer.is_private:
            return (
                f"load balancer {lb_id} is private (isPrivate): the CA cannot reach its port-80"
                " listener, so http-01 cannot validate; use a DNS challenge for names served"
                " only there, or target the public load balancer the names resolve to"
            )
        if self._backend_set not in (load_balancer.backend_sets or {}):
            return (
                f"load balancer {lb_id} has no backend set {self._backend_set!r}"
                " (oci.challengeBackendSet; Terraform creates it with the token server):"
                " apply the stack for this load balancer, or fix the name"
            )
        return None

    def _https_ports(self, lb_id: str) -> set[int]:
        """The ports a redirect may name to reach this load balancer's listener port 443."""
        ports = {_HTTPS_PORT}
        local = self._address_override(lb_id, _HTTPS_PORT) if self._address_override else None
        if local is not None:
            ports.add(local[1])
        return ports

    @contextmanager
    def _mutation(self, lb_id: str, deadline: float) -> Iterator[None]:
        """Hold the deployer's per-load-balancer lock (rule 4: one mutation at a time)."""
        registry = LoadBalancerDeployer
        with registry._locks_guard:  # noqa: SLF001 - the one lock registry per load balancer
            lock = registry._locks.setdefault(lb_id, threading.Lock())  # noqa: SLF001
        remaining = deadline - self._clock.monotonic()
        if remaining <= 0 or not lock.acquire(timeout=remaining):
            msg = f"load balancer {lb_id}: the deadline came before the challenge route change"
            raise TransientError(msg)
        try:
            yield
        finally:
            lock.release()

    def _listener_steps(
        self, load_balancer: SdkModel, listener: SdkModel, planned: list[_Step]
    ) -> list[_Step]:
        if not listener.routing_policy_name and listener.default_backend_set_name == (
            self._backend_set
        ):
            return []  # everything already goes to the token backend (our shape-d listener)
        policies = load_balancer.routing_policies or {}
        name = listener.routing_policy_name or self.policy_name
        steps: list[_Step] = []
        policy = policies.get(name)
        if policy is None:
            steps.append(_Step("create_policy", name))
        elif not self._ours_first(policy):
            steps.append(_Step("insert_rule", name))
        if not listener.routing_policy_name:
            steps.append(_Step("attach", listener.name, name))
        return [step for step in steps if step not in planned]

    def _ours_first(self, policy: SdkModel) -> bool:
        rules = policy.rules or []
        return bool(rules) and _rule_json(rules[0]) == self._rule_json()

    def _rule_json(self) -> dict[str, Any]:
        return {
            "name": self.rule_name,
            "condition": CONDITION,
            "actions": [{"name": FORWARD, "backend_set_name": self._backend_set}],
        }

    def _rule(self) -> SdkModel:
        models = oci.load_balancer.models
        return models.RoutingRule(
            name=self.rule_name,
            condition=CONDITION,
            actions=[models.ForwardToBackendSet(name=FORWARD, backend_set_name=self._backend_set)],
        )

    # ------------------------------------------------------------------ changing

    def _apply(self, lb_id: str, step: _Step, deadline: float) -> str:
        models = oci.load_balancer.models
        client = self._clients.load_balancer
        action = step.describe(lb_id)
        if step.kind == "create_policy":
            details = models.CreateRoutingPolicyDetails(
                name=step.target, condition_language_version="V1", rules=[self._rule()]
            )
            with translate(action):
                response = client.create_routing_policy(details, lb_id)
            return self._follow(response, action, deadline)
        if step.kind == "create_listener":
            details = models.CreateListenerDetails(
                name=step.target,
                port=_HTTP_PORT,
                protocol="HTTP",
                default_backend_set_name=self._backend_set,
            )
            with translate(action):
                response = client.create_listener(details, lb_id)
            return self._follow(response, action, deadline)
        for attempt in (1, 2):
            load_balancer, etag = self._read(lb_id)
            try:
                with translate(action):
                    if step.kind == "insert_rule":
                        policy = (load_balancer.routing_policies or {})[step.target]
                        rules = [r for r in policy.rules or [] if r.name != self.rule_name]
                        update = models.UpdateRoutingPolicyDetails(
                            condition_language_version=policy.condition_language_version,
                            rules=[self._rule(), *rules],
                        )
                        response = client.update_routing_policy(
                            update, lb_id, step.target, if_match=etag
                        )
                    else:
                        listener = (load_balancer.listeners or {})[step.target]
                        response = client.update_listener(
                            _listener_update(lb_id, listener, step.policy),
                            lb_id,
                            step.target,
                            if_match=etag,
                        )
            except ConfigError as exc:
                if exc.oci_status != _PRECONDITION_FAILED or attempt == 2:  # noqa: PLR2004
                    raise
                logger.warning("challenge_route retry lb=%s reason=etag_changed", lb_id)
                continue
            return self._follow(response, action, deadline)
        msg = f"{action}: the load balancer kept changing under us"  # pragma: no cover
        raise TransientError(msg)  # pragma: no cover

    def _verify(
        self,
        lb_id: str,
        before: SdkModel,
        after: SdkModel,
        steps: list[_Step],
        dns_names: Sequence[str],
    ) -> None:
        """Read-back: the route in place, and only what the steps name changed."""
        where = f"read-back of the challenge route on load balancer {lb_id}"
        remaining, refusal = self._plan(after, dns_names)
        if remaining or refusal:
            missing = "; ".join(s.describe(lb_id) for s in remaining) or str(refusal)
            msg = f"{where}: still not in place ({missing})"
            raise DeploymentError(msg)
        for step in steps:
            if step.kind == "attach":
                old = oci.util.to_dict((before.listeners or {})[step.target])
                old["routing_policy_name"] = step.policy
                new = oci.util.to_dict((after.listeners or {})[step.target])
                if old != new:
                    msg = f"{where}: listener {step.target} changed beyond its routing policy"
                    raise DeploymentError(msg)
            if step.kind == "insert_rule":
                old_rules = [
                    oci.util.to_dict(r)
                    for r in (before.routing_policies or {})[step.target].rules or []
                    if r.name != self.rule_name
                ]
                new_rules = [
                    oci.util.to_dict(r) for r in (after.routing_policies or {})[step.target].rules
                ]
                if new_rules[1:] != old_rules:
                    msg = f"{where}: the rules of routing policy {step.target} changed"
                    raise DeploymentError(msg)

    # ------------------------------------------------------------------ plumbing

    def _read(self, lb_id: str) -> tuple[SdkModel, str | None]:
        with translate(f"read load balancer {lb_id}"):
            response = self._clients.load_balancer.get_load_balancer(lb_id)
        return response.data, response.headers.get("etag")

    def _follow(self, response: Any, action: str, deadline: float) -> str:  # noqa: ANN401
        work_request = response.headers.get("opc-work-request-id")
        if not work_request:
            msg = f"{action}: OCI accepted the change but named no work request"
            raise DeploymentError(msg)
        logger.info("challenge_route mutation: %s work_request=%s", action, work_request)
        wait = min(_FIRST_POLL, self._poll_interval)
        while True:
            with translate(f"{action}: read work request {work_request}"):
                state = self._clients.load_balancer.get_work_request(work_request).data
            if state.lifecycle_state == _SUCCEEDED:
                return str(work_request)
            if state.lifecycle_state == _FAILED:
                details = "; ".join(
                    f"{e.error_code}: {e.message}" for e in state.error_details or []
                )
                msg = f"{action}: work request {work_request} FAILED: {details or state.message}"
                raise DeploymentError(msg, work_request_id=str(work_request))
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                msg = f"{action}: work request {work_request} still running at the deadline"
                raise TransientError(msg)
            self._clock.sleep(min(wait, remaining))
            wait = min(wait * 2, self._poll_interval)


# ---------------------------------------------------------------------- helpers


def _rule_json(rule: SdkModel) -> dict[str, Any]:
    data = oci.util.to_dict(rule)
    return {
        "name": data.get("name"),
        "condition": data.get("condition"),
        "actions": [
            {"name": a.get("name"), "backend_set_name": a.get("backend_set_name")}
            for a in data.get("actions") or []
        ],
    }


def _path_matches(operator: str, value: str, path: str) -> bool:
    if operator == "EXACT_MATCH":
        return path == value
    if operator in ("PREFIX_MATCH", "FORCE_LONGEST_PREFIX_MATCH"):
        return path.startswith(value)
    if operator == "SUFFIX_MATCH":
        return path.endswith(value)
    return False


def _challenge_redirect(load_balancer: SdkModel, listener: SdkModel) -> SdkModel | None:
    """The REDIRECT rule of ``listener``'s rule sets that a challenge request meets, if any."""
    rule_sets = load_balancer.rule_sets or {}
    for name in listener.rule_set_names or []:
        rule_set = rule_sets.get(name)
        for item in (rule_set.items if rule_set is not None else None) or []:
            if item.action != "REDIRECT" or not item.conditions:
                continue
            if all(
                _path_matches(c.operator or "", c.attribute_value or "", _PROBE)
                for c in item.conditions
            ):
                return item
    return None


def _redirect_lands_here(
    rule: SdkModel, dns_names: Sequence[str], https_ports: set[int]
) -> str | None:
    """None when ``rule`` sends the CA to this load balancer's HTTPS port; else where it goes.

    The CA follows to ``https`` on port 443 without checking the certificate; a ``{host}`` or
    absent host, or one of the certificate's names, is this load balancer. An absent port
    keeps the request's (80), where no HTTPS listener is.
    """
    uri = rule.redirect_uri
    protocol = ((uri.protocol if uri else None) or "").upper()
    port = uri.port if uri else None
    host = (uri.host if uri else None) or "{host}"
    names = {n.lower().rstrip(".") for n in dns_names}
    if protocol != "HTTPS":
        return f"to protocol {protocol or 'unchanged (http)'}, not HTTPS"
    if port not in https_ports:
        return f"to port {port or 80}, where the CA does not find the HTTPS listener"
    if host != "{host}" and host.lower().rstrip(".") not in names:
        return f"to another host ({host})"
    return None


def _listener_update(lb_id: str, listener: SdkModel, policy: str) -> SdkModel:
    """UpdateListenerDetails carrying every field of ``listener``, with ``policy`` attached."""
    models = oci.load_balancer.models
    where = f"listener {listener.name!r} of load balancer {lb_id}"
    fields = carry_over(listener, models.UpdateListenerDetails, where, ignore={"name"})
    ssl = listener.ssl_configuration
    if ssl is not None:
        fields["ssl_configuration"] = models.SSLConfigurationDetails(
            **carry_over(ssl, models.SSLConfigurationDetails, f"{where} sslConfiguration")
        )
    fields["routing_policy_name"] = policy
    return models.UpdateListenerDetails(**copy.deepcopy(fields))
