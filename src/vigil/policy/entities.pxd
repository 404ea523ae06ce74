# C layout of Entity when compiled (setup.py): the same attributes as its __slots__, read by the
# authorizer as struct fields instead of through slot descriptors.

cdef class Entity:
    cdef public object uid, attrs, parents, tags, ancestors, resource_status, resource_info
    cdef public dict candidates
