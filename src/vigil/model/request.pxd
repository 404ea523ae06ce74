# C layout of AccessRequest when compiled (setup.py): the same attributes as its __slots__.

cdef class AccessRequest:
    cdef public object principal, action, resource, context
    cdef public object subject_properties, resource_properties, action_properties


cpdef tuple action_uid(str action_type, str name)
