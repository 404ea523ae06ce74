# C layout of Entity when compiled (setup.py): the same attributes as its __slots__, read by the
# authorizer as struct fields instead of through slot descriptors.

cdef class Entity:
    # the fields a decision reads first, together (the struct's first cache line or two)
    cdef public object uid, attrs, ancestors
    cdef public tuple resource_status
    cdef public set status_sets
    cdef public object resource_info
    cdef public dict candidates
    cdef public object parents, tags
