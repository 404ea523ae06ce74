# C layout of IPAddr when compiled (setup.py): its slots as struct fields, created without a Python
# __init__ call; and C types for the dotted-quad parser (a loop over the text's code points with C
# integers). Everything else in the module stays Python objects.
cimport cython


@cython.locals(n=cython.Py_ssize_t, addr=cython.longlong, part=cython.int, digits=cython.int,
               dots=cython.int, ch=cython.Py_UCS4)
cpdef long long _dotted_quad(str text)


cdef class IPAddr:
    cdef public object version, address, prefix, text


# ip(text) as a C function, so the context conversion calls it directly.
@cython.locals(address=cython.longlong, ip=IPAddr)
cpdef IPAddr parse_ipaddr(object text)

@cython.locals(ip=IPAddr)
cdef IPAddr _host_v4(object address, object text)
