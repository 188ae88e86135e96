# The thin binding to the C ABI in include/fastconv/fastconv.h. Argument checking with good messages
# happens in _arguments.py before anything here runs; this layer re-checks only what keeps the C code
# in bounds (array sizes, dtypes, contiguity), and releases the GIL while C runs.
cimport numpy as cnp
from libc.stdint cimport int64_t

cnp.import_array()

cdef extern from "fastconv/fastconv.h" nogil:
    ctypedef enum fc_status:
        FC_STATUS_OK

    ctypedef enum fc_dtype:
        pass

    ctypedef enum fc_layout:
        pass

    ctypedef enum fc_algorithm:
        pass

    ctypedef struct fc_conv_params:
        int spatial_dims
        int transposed
        fc_dtype dtype
        fc_layout layout
        int64_t in_channels, out_channels, groups
        int64_t kernel[3]
        int64_t stride[3]
        int64_t dilation[3]
        int64_t output_padding[3]

    ctypedef struct fc_input_geometry:
        int64_t batch
        int64_t in_size[3]
        int64_t pad_begin[3]
        int64_t pad_end[3]

    ctypedef struct fc_plan:
        pass

    fc_status fc_output_size(const fc_conv_params *params, const fc_input_geometry *geometry,
                             int64_t *out_size)
    fc_status fc_plan_create(const fc_conv_params *params, const void *weight, const void *bias,
                             fc_algorithm algorithm, fc_plan **plan_out)
    fc_status fc_plan_create_borrowed(const fc_conv_params *params, const void *weight,
                                      const void *bias, fc_algorithm algorithm, fc_plan **plan_out)
    fc_status fc_plan_execute(const fc_plan *plan, const fc_input_geometry *geometry,
                              const void *input, void *output, int num_threads, fc_algorithm *used)
    fc_algorithm fc_plan_choose(const fc_plan *plan, const fc_input_geometry *geometry,
                                int num_threads)
    fc_status fc_plan_execute_engine(const fc_plan *plan, fc_algorithm engine,
                                     const fc_input_geometry *geometry, const void *input,
                                     void *output, int num_threads, fc_algorithm *used)
    const char *fc_plan_explain(const fc_plan *plan, const fc_input_geometry *geometry,
                                int num_threads)
    int64_t fc_plan_memory(const fc_plan *plan)
    void fc_plan_destroy(fc_plan *plan)
    const char *fc_algorithm_unsupported_reason(const fc_conv_params *params,
                                                fc_algorithm algorithm)
    const char *fc_status_message(fc_status status)
    const char *fc_algorithm_name(fc_algorithm algorithm)
    fc_status fc_blas_load(const char *library_path)
    int fc_blas_available()
    int fc_default_num_threads()
    const char *fc_isas_compiled()
    const char *fc_isas_detected()
    const char *fc_isa_selected()

ALGORITHMS = {"auto": 0, "direct": 1, "im2col": 2, "winograd": 3, "winograd_f4": 4}
_DTYPES = {"float32": 0, "float64": 1}
LAYOUTS = {"channels_first": 0, "channels_last": 1}


class FastconvError(RuntimeError):
    """A failure inside the C library that argument checking could not foresee (out of memory)."""


cdef _raise(fc_status status, str what):
    if status == FC_STATUS_OK:
        return
    message = fc_status_message(status).decode()
    if status == 3:
        raise MemoryError(f"{what}: {message}")
    raise FastconvError(f"{what}: {message} (status {int(status)})")


cdef fc_conv_params _params(dict layer) except *:
    """layer: spatial_dims, transposed, dtype, layout, in/out_channels, groups and the 3-tuples
    kernel, stride, dilation, output_padding (already padded to three spatial dims)."""
    cdef fc_conv_params p
    p.spatial_dims = layer["spatial_dims"]
    p.transposed = 1 if layer["transposed"] else 0
    p.dtype = <fc_dtype>_DTYPES[layer["dtype"]]
    p.layout = <fc_layout>LAYOUTS[layer["layout"]]
    p.in_channels = layer["in_channels"]
    p.out_channels = layer["out_channels"]
    p.groups = layer["groups"]
    for i in range(3):
        p.kernel[i] = layer["kernel"][i]
        p.stride[i] = layer["stride"][i]
        p.dilation[i] = layer["dilation"][i]
        p.output_padding[i] = layer["output_padding"][i]
    return p


cdef fc_input_geometry _geometry(int64_t batch, tuple in_size, tuple pad_begin, tuple pad_end):
    cdef fc_input_geometry g
    g.batch = batch
    for i in range(3):
        g.in_size[i] = in_size[i]
        g.pad_begin[i] = pad_begin[i]
        g.pad_end[i] = pad_end[i]
    return g


def unsupported_reason(dict layer, str algorithm):
    """None when `algorithm` can run the layer, else the C library's reason."""
    cdef fc_conv_params p = _params(layer)
    cdef const char *reason = fc_algorithm_unsupported_reason(&p, <fc_algorithm>ALGORITHMS[algorithm])
    return None if reason == NULL else reason.decode()


def load_blas(str path):
    """Loads the scipy-openblas32 library for the im2col engine."""
    _raise(fc_blas_load(path.encode()), f"loading BLAS from {path}")


def blas_available():
    return bool(fc_blas_available())


def default_num_threads():
    return fc_default_num_threads()


def isas():
    """(compiled, detected, selected): the SIMD instruction sets, as comma-separated names."""
    return fc_isas_compiled().decode(), fc_isas_detected().decode(), fc_isa_selected().decode()


cdef int64_t _elements(cnp.ndarray a):
    return cnp.PyArray_SIZE(a)


cdef void _check_array(cnp.ndarray a, str name, int typenum, int64_t elements) except *:
    if cnp.PyArray_TYPE(a) != typenum:
        raise TypeError(f"{name}: dtype {a.dtype} does not match the plan's")
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError(f"{name}: must be C-contiguous")
    if _elements(a) != elements:
        raise ValueError(f"{name}: has {_elements(a)} elements, the layer needs {elements}")


cdef int _typenum(const fc_conv_params *p):
    return cnp.NPY_FLOAT32 if p.dtype == <fc_dtype>_DTYPES["float32"] else cnp.NPY_FLOAT64


cdef void _check_weights(const fc_conv_params *p, int typenum, cnp.ndarray weight, object bias) except *:
    cdef int64_t rows = p.out_channels if not p.transposed else p.in_channels
    cdef int64_t per_group = (p.in_channels if not p.transposed else p.out_channels) // p.groups
    _check_array(weight, "weight", typenum, rows * per_group * (p.kernel[0] * p.kernel[1] * p.kernel[2]))
    if bias is not None:
        _check_array(bias, "bias", typenum, p.out_channels)


cdef void _check_io(const fc_conv_params *p, int typenum, const fc_input_geometry *g, cnp.ndarray x,
                    cnp.ndarray out) except *:
    cdef int64_t out_size[3]
    _raise(fc_output_size(p, g, out_size), "computing the output size")
    _check_array(x, "input", typenum,
                 g.batch * p.in_channels * g.in_size[0] * g.in_size[1] * g.in_size[2])
    _check_array(out, "out", typenum,
                 g.batch * p.out_channels * out_size[0] * out_size[1] * out_size[2])
    if not cnp.PyArray_ISWRITEABLE(out):
        raise ValueError("out: must be writable")


cdef class Layer:
    """A layer's C parameters, converted once: the functional API's repeated calls each run a borrowed
    plan of the layer on their own arrays, which costs no Python object beyond this one."""
    cdef fc_conv_params params
    cdef int typenum

    def __cinit__(self, dict layer):
        self.params = _params(layer)
        self.typenum = _typenum(&self.params)

    def run(self, cnp.ndarray weight, object bias, cnp.ndarray x, cnp.ndarray out, int64_t batch,
            tuple in_size, tuple pad_begin, tuple pad_end, int num_threads, str algorithm="auto"):
        """Runs a plan borrowing weight and bias once, as Plan(..., borrow=True).execute would."""
        _check_weights(&self.params, self.typenum, weight, bias)
        cdef fc_input_geometry g = _geometry(batch, in_size, pad_begin, pad_end)
        _check_io(&self.params, self.typenum, &g, x, out)
        cdef fc_algorithm algo = <fc_algorithm>ALGORITHMS[algorithm]
        cdef const void *weight_ptr = cnp.PyArray_DATA(weight)
        cdef const void *bias_ptr = NULL if bias is None else cnp.PyArray_DATA(bias)
        cdef const void *x_ptr = cnp.PyArray_DATA(x)
        cdef void *out_ptr = cnp.PyArray_DATA(out)
        cdef fc_plan *plan = NULL
        cdef fc_status status
        cdef fc_algorithm used
        with nogil:
            status = fc_plan_create_borrowed(&self.params, weight_ptr, bias_ptr, algo, &plan)
            if status == FC_STATUS_OK:
                status = fc_plan_execute(plan, &g, x_ptr, out_ptr, num_threads, &used)
            fc_plan_destroy(plan)
        _raise(status, "executing the convolution")


cdef class Plan:
    """One layer's weights, held in C, executed on inputs of any batch and spatial size. With
    borrow=True the C plan references the arrays (kept alive here) instead of copying them: the
    caller must not change them while the plan exists (the functional API's one-shot plans)."""
    cdef fc_plan *ptr
    cdef fc_conv_params params
    cdef int typenum
    cdef object borrowed

    def __cinit__(self, dict layer, cnp.ndarray weight, object bias, str algorithm, bint borrow=False):
        self.ptr = NULL
        self.borrowed = (weight, bias) if borrow else None
        self.params = _params(layer)
        self.typenum = _typenum(&self.params)
        _check_weights(&self.params, self.typenum, weight, bias)
        cdef const void *bias_ptr = NULL if bias is None else cnp.PyArray_DATA(bias)
        cdef fc_algorithm algo = <fc_algorithm>ALGORITHMS[algorithm]
        cdef const void *weight_ptr = cnp.PyArray_DATA(weight)
        cdef fc_status status
        with nogil:
            if borrow:
                status = fc_plan_create_borrowed(&self.params, weight_ptr, bias_ptr, algo, &self.ptr)
            else:
                status = fc_plan_create(&self.params, weight_ptr, bias_ptr, algo, &self.ptr)
        _raise(status, "creating the convolution plan")

    def __dealloc__(self):
        fc_plan_destroy(self.ptr)

    def output_size(self, int64_t batch, tuple in_size, tuple pad_begin, tuple pad_end):
        cdef fc_input_geometry g = _geometry(batch, in_size, pad_begin, pad_end)
        cdef int64_t out[3]
        _raise(fc_output_size(&self.params, &g, out), "computing the output size")
        return (out[0], out[1], out[2])

    def choose(self, int64_t batch, tuple in_size, tuple pad_begin, tuple pad_end, int num_threads):
        cdef fc_input_geometry g = _geometry(batch, in_size, pad_begin, pad_end)
        return fc_algorithm_name(fc_plan_choose(self.ptr, &g, num_threads)).decode()

    def explain(self, int64_t batch, tuple in_size, tuple pad_begin, tuple pad_end, int num_threads):
        """The cost model's rule behind choose(), as a sentence."""
        cdef fc_input_geometry g = _geometry(batch, in_size, pad_begin, pad_end)
        return fc_plan_explain(self.ptr, &g, num_threads).decode()

    @property
    def memory(self):
        return fc_plan_memory(self.ptr)

    def execute(self, cnp.ndarray x, cnp.ndarray out, int64_t batch, tuple in_size, tuple pad_begin,
                tuple pad_end, int num_threads, str engine="auto"):
        """Runs the plan; engine: one of the plan's engines to run instead of choosing (tuning)."""
        cdef fc_input_geometry g = _geometry(batch, in_size, pad_begin, pad_end)
        _check_io(&self.params, self.typenum, &g, x, out)
        cdef const void *x_ptr = cnp.PyArray_DATA(x)
        cdef void *out_ptr = cnp.PyArray_DATA(out)
        cdef fc_status status
        cdef fc_algorithm used = <fc_algorithm>0
        cdef fc_algorithm wanted = <fc_algorithm>ALGORITHMS[engine]
        with nogil:
            status = fc_plan_execute_engine(self.ptr, wanted, &g, x_ptr, out_ptr, num_threads, &used)
        _raise(status, "executing the convolution")
        return fc_algorithm_name(used).decode()
