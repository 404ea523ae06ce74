# C layouts of Engine and its per-generation state when compiled (setup.py), and C types for the
# decision core: the behaviour model, profile, entity, Cedar answer and record are read as struct
# fields, and assess/is_authorized are called directly.
cimport cython
from vigil.behaviour.model cimport BehaviourModel
from vigil.behaviour.profile cimport Profile
from vigil.behaviour.signals cimport Assessment
from vigil.model.decision cimport DecisionRecord, new_record
from vigil.model.request cimport AccessRequest, parse_authzen
from vigil.policy.json_values cimport record_to_cedar
from vigil.policy.entities cimport Entity
from vigil.policy.evaluator cimport Authorizer
from vigil.pipeline.authorize cimport Verdict, authorize
from vigil.pipeline.combine cimport Outcome, asks_approval, combine, counts_high, unsaved


cdef class _State:
    cdef public object action_type, mode, overlay_rules, revision, schema, workspace
    cdef public Authorizer authorizer
    cdef public BehaviourModel behaviour
    cdef public dict by_uid, by_type, reach, path_steps
    cdef public bint policy_reads_vigil
    cdef public long long entity_seq
    cdef public dict entity_versions


cdef class Engine:
    cdef public dict _strings, _profiles, _seen, _tool_hints, _tool_sources
    cdef public _State _state
    cdef public object _clock, _ids, _store, _audit, _reload_lock, last_reload_error
    cdef public object profiles, approvals, quarantine, registry, identities, desk, cluster, sharing, _outbox
    cdef public object _revoked, revocations, signing_keys, verifier, tokens, _fetch, _issuer_override
    cdef public bint _require_token
    cdef public frozenset _id_inactive
    cdef public double _id_expiry
    cdef public bint _audit_required
    cdef public long long store_errors, reloads
    cdef object __weakref__

    @cython.locals(beh=BehaviourModel, prof=Profile, entity=Entity, rentity=Entity, record=DecisionRecord, a=Assessment,
                   out=Outcome, v=Verdict, principal=tuple, actor=Entity, who=tuple, on_behalf=str,
                   allowed=cython.bint, learnable=cython.bint, mine=dict)
    cpdef DecisionRecord _decide(self, _State st, AccessRequest req, double when, object t0, object delegation=*)
    cdef dict _context(self, _State st, AccessRequest req)
    cdef Profile _profile_of(self, BehaviourModel beh, Entity entity, AccessRequest req, Entity rentity, double when)
    @cython.locals(inactive=frozenset)
    cdef bint _gated(self, tuple principal, double when) except -1
    @cython.locals(a=Assessment)
    cdef tuple _signals_first(self, BehaviourModel beh, Profile prof, AccessRequest req, dict context, double when,
                              Entity rentity, object ip, str on_behalf, object step)
    cdef void _learn(self, BehaviourModel beh, Profile prof, tuple principal, object f, bint learnable, bint allowed,
                     double when)
    @cython.locals(out=Outcome, granted=cython.bint, highs=cython.longlong)
    cdef tuple _combine(self, BehaviourModel beh, Profile prof, tuple who, AccessRequest req, Assessment a, object f,
                        bint allowed, tuple reasons)
    cpdef void _finish(self, DecisionRecord record)


cdef str _on_behalf(tuple subject)
cdef bint _established(BehaviourModel beh, Profile prof, double when)
@cython.locals(ids=dict)
cdef Entity _entity(dict by_type, tuple uid)
