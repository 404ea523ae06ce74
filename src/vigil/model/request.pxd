# C layout of AccessRequest when compiled (setup.py): the same attributes as its __slots__; the
# fast path of parse_authzen reads typed dicts and builds the request without an __init__ call.
cimport cython

cdef class AccessRequest:
    cdef public object principal, action, resource, context
    cdef public object subject_properties, resource_properties, action_properties


cdef dict _ACTIONS

@cython.locals(by_name=dict, uid=tuple)
cpdef tuple action_uid(str action_type, str name)

@cython.locals(req=AccessRequest)
cdef AccessRequest _new_request(tuple principal, tuple action, tuple resource, dict context)

cdef void _fill(AccessRequest req, object principal, object action, object resource, object context,
                object subject_properties, object resource_properties, object action_properties) noexcept

@cython.locals(body=dict, s=dict, a=dict, r=dict)
cpdef AccessRequest parse_authzen(object request, str action_type=*)
