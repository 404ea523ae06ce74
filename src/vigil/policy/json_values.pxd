# C types for the context conversion when compiled (setup.py): record_to_cedar runs once per
# decision; its dict operations compile to direct C-API calls and ip() to a C call.
cimport cython
from vigil.policy.extensions cimport IPAddr, parse_ipaddr

@cython.locals(out=dict, known=set, spec=dict)
cpdef dict record_to_cedar(object value, object where=*)
