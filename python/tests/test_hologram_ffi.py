"""The seed's 50 functions, one class per group as the seed README names them, plus the
README's Quick Start and usage examples run verbatim."""
import contextlib
import io
import json

import numpy as np
import pytest

import hologram_ffi as hg
from conftest import download, upload


class TestBasicOperations:
    def test_get_version(self):
        version = hg.get_version()
        assert isinstance(version, str) and version == hg.__version__
        assert [int(p) for p in version.split(".")] == [0, 1, 0]

    def test_clear_all_registries(self):
        e = hg.new_executor()
        b = hg.executor_allocate_buffer(e, 8)
        t = hg.tensor_from_buffer(b, "[8]")
        assert hg.clear_all_registries() is None
        for fn, h in ((hg.buffer_length, b), (hg.tensor_ndim, t), (hg.executor_cleanup, e)):
            with pytest.raises(hg.InvalidHandleError):
                fn(h)

    def test_vector_add_small(self, ex):
        a, b, c = (hg.executor_allocate_buffer(ex, 4) for _ in range(3))
        hg.buffer_copy_from_slice(ex, a, "[1, 2, 3, 4]")
        hg.buffer_copy_from_slice(ex, b, "[10, 20, 30, 40]")
        assert hg.vector_add_f32(ex, a, b, c, 4) is None
        assert hg.buffer_to_vec(ex, c) == "[11.0, 22.0, 33.0, 44.0]"


class TestExecutorManagement:
    def test_new_executor_handles_are_distinct_ints(self):
        handles = [hg.new_executor() for _ in range(5)]
        assert all(isinstance(h, int) and h > 0 for h in handles)
        assert len(set(handles)) == 5
        for h in handles:
            assert hg.executor_cleanup(h) is None

    def test_cleanup_frees_buffers_and_tensors(self):
        e = hg.new_executor()
        b = hg.executor_allocate_buffer(e, 6)
        t = hg.tensor_from_buffer(b, "[2, 3]")
        hg.executor_cleanup(e)
        with pytest.raises(hg.InvalidHandleError):
            hg.buffer_length(b)
        with pytest.raises(hg.InvalidHandleError):
            hg.tensor_shape(t)
        with pytest.raises(hg.InvalidHandleError):
            hg.executor_cleanup(e)

    def test_executor_class_context_manager(self):
        with hg.Executor() as ex:
            a = ex.from_numpy(np.arange(8, dtype=np.float32))
            c = ex.allocate_buffer(8)
            ex.scalar_mul_f32(a, c, 8, 2.0)
            t = ex.tensor_from_buffer(c, "[2, 4]")
            tt = ex.tensor_transpose(t)
            m = ex.tensor_matmul(t, tt)
            np.testing.assert_array_equal(ex.to_numpy(c), np.arange(8) * 2.0)
            assert ex.buffers == [a, c] and ex.tensors == [t, tt, m]
            handle = ex.handle
        assert ex.handle is None
        for fn, h in ((hg.buffer_length, a), (hg.tensor_ndim, m), (hg.executor_cleanup, handle)):
            with pytest.raises(hg.InvalidHandleError):
                fn(h)
        ex.close()                                   # idempotent

    def test_executor_class_survives_clear_all(self):
        with hg.Executor() as ex:
            ex.allocate_buffer(4)
            hg.clear_all_registries()


class TestBufferOperations:
    def test_linear_properties(self, ex):
        b = hg.executor_allocate_buffer(ex, 100)
        assert hg.buffer_length(b) == 100
        assert hg.buffer_is_empty(b) == 0
        assert hg.buffer_is_linear(b) == 1
        assert hg.buffer_is_boundary(b) == 0
        assert hg.buffer_pool(b) == "Linear"
        assert hg.buffer_element_size(b) == 4
        assert hg.buffer_size_bytes(b) == 400
        assert hg.buffer_class_index(b) == 0
        assert json.loads(hg.buffer_to_vec(ex, b)) == [0.0] * 100

    def test_empty_buffer(self, ex):
        b = hg.executor_allocate_buffer(ex, 0)
        assert hg.buffer_is_empty(b) == 1 and hg.buffer_length(b) == 0
        assert hg.buffer_to_vec(ex, b) == "[]"

    def test_boundary_buffer(self, ex):
        b = hg.executor_allocate_boundary_buffer(ex, 5, 16, 16)
        assert hg.buffer_length(b) == 64
        assert hg.buffer_is_boundary(b) == 1 and hg.buffer_is_linear(b) == 0
        assert hg.buffer_pool(b) == "Boundary"
        assert hg.buffer_class_index(b) == 5
        assert hg.buffer_size_bytes(b) == 256
        whole = hg.executor_allocate_boundary_buffer(ex, 95, 48, 256)
        assert hg.buffer_length(whole) == 3072

    def test_boundary_buffers_of_one_class_share_memory(self, ex):
        a = hg.executor_allocate_boundary_buffer(ex, 7, 4, 4)
        b = hg.executor_allocate_boundary_buffer(ex, 7, 8, 8)
        hg.buffer_copy_from_slice(ex, a, "[1, 2, 3, 4]")
        assert json.loads(hg.buffer_to_vec(ex, b))[:5] == [1.0, 2.0, 3.0, 4.0, 0.0]

    def test_copy_from_slice_partial_and_to_vec(self, ex):
        b = hg.executor_allocate_buffer(ex, 5)
        hg.buffer_fill(ex, b, 7, 5)
        hg.buffer_copy_from_slice(ex, b, json.dumps([0.1, -2, float("nan")]))
        assert hg.buffer_to_vec(ex, b) == "[0.1, -2.0, NaN, 7.0, 7.0]"

    def test_fill_and_copy_first_n(self, ex):
        a = hg.executor_allocate_buffer(ex, 6)
        b = hg.executor_allocate_buffer(ex, 6)
        hg.buffer_fill(ex, a, 1.5, 4)
        hg.buffer_copy(ex, a, b, 3)
        assert json.loads(hg.buffer_to_vec(ex, a)) == [1.5] * 4 + [0.0] * 2
        assert json.loads(hg.buffer_to_vec(ex, b)) == [1.5] * 3 + [0.0] * 3

    def test_buffer_cleanup(self, ex):
        b = hg.executor_allocate_buffer(ex, 3)
        assert hg.buffer_cleanup(b) is None
        with pytest.raises(hg.InvalidHandleError):
            hg.buffer_length(b)

    def test_numpy_helpers(self, ex):
        x = np.linspace(-1, 1, 33, dtype=np.float32).reshape(3, 11)
        b = hg.executor_allocate_buffer(ex, 40)
        hg.buffer_copy_from_numpy(ex, b, x)
        got = hg.buffer_to_numpy(ex, b)
        assert got.dtype == np.float32 and got.shape == (40,)
        np.testing.assert_array_equal(got[:33], x.ravel())
        with pytest.raises(TypeError):
            hg.buffer_copy_from_numpy(ex, b, x.astype(np.float64))
        with pytest.raises(TypeError):
            hg.buffer_copy_from_numpy(ex, b, [1.0, 2.0])
        with pytest.raises(hg.InvalidArgumentError):
            hg.buffer_copy_from_numpy(ex, b, x.T)
        with pytest.raises(hg.OutOfBoundsError):
            hg.buffer_copy_from_numpy(ex, b, np.zeros(41, np.float32))
        np.testing.assert_array_equal(hg.buffer_to_numpy(ex, b)[:33], x.ravel())

    def test_all_seed_ops_callable(self, ex):
        """Each of the 26 seed operations once, through the flat API, on small data."""
        x = upload(ex, np.array([0.5, -1.5, 2.0, 0.25], np.float32))
        y = upload(ex, np.array([0.25, 0.5, 1.0, 0.75], np.float32))
        out = hg.executor_allocate_buffer(ex, 4)
        for op in ("vector_add_f32", "vector_sub_f32", "vector_mul_f32", "vector_div_f32",
                   "vector_min_f32", "vector_max_f32"):
            assert getattr(hg, op)(ex, x, y, out, 4) is None
        for op in ("vector_abs_f32", "vector_neg_f32", "vector_relu_f32", "sigmoid_f32",
                   "tanh_f32", "gelu_f32", "softmax_f32"):
            assert getattr(hg, op)(ex, x, out, 4) is None
        assert hg.vector_clip_f32(ex, x, out, 4, -1, 1) is None
        assert hg.scalar_add_f32(ex, x, out, 4, 1) is None
        assert hg.scalar_mul_f32(ex, x, out, 4, 2.5) is None
        assert hg.reduce_sum_f32(ex, x, out, 4) == 1.25
        assert hg.reduce_min_f32(ex, x, out, 4) == -1.5
        assert hg.reduce_max_f32(ex, x, out, 4) == 2.0
        assert hg.mse_loss_f32(ex, x, y, out, 4) == pytest.approx(
            np.mean((np.array([0.5, -1.5, 2.0, 0.25]) - [0.25, 0.5, 1.0, 0.75]) ** 2))
        for op in ("cross_entropy_loss_f32", "binary_cross_entropy_loss_f32"):
            assert isinstance(getattr(hg, op)(ex, y, y, out, 4), float)
        assert hg.gemm_f32(ex, x, y, out, 2, 2, 2) is None
        expected = (np.array([[0.5, -1.5], [2.0, 0.25]])
                    @ np.array([[0.25, 0.5], [1.0, 0.75]])).ravel()
        np.testing.assert_allclose(download(ex, out), expected, rtol=1e-6)
        assert hg.matvec_f32(ex, x, y, out, 2, 2) is None


class TestTensorOperations:
    def test_properties(self, ex):
        b = hg.executor_allocate_buffer(ex, 24)
        t = hg.tensor_from_buffer(b, "[2, 3, 4]")
        assert json.loads(hg.tensor_shape(t)) == [2, 3, 4]
        assert json.loads(hg.tensor_strides(t)) == [12, 4, 1]
        assert hg.tensor_offset(t) == 0
        assert hg.tensor_ndim(t) == 3
        assert hg.tensor_numel(t) == 24
        assert hg.tensor_is_contiguous(t) == 1
        assert hg.tensor_buffer(t) == b
        assert hg.tensor_cleanup(t) is None
        hg.buffer_cleanup(b)

    def test_with_strides_transpose_select(self, ex):
        b = upload(ex, np.arange(12, dtype=np.float32))
        t = hg.tensor_from_buffer_with_strides(b, "[3, 4]", "[4, 1]")
        tt = hg.tensor_transpose(t)
        assert json.loads(hg.tensor_shape(tt)) == [4, 3]
        assert json.loads(hg.tensor_strides(tt)) == [1, 4]
        assert hg.tensor_is_contiguous(tt) == 0
        row = hg.tensor_select(t, 0, 2)
        assert json.loads(hg.tensor_shape(row)) == [4] and hg.tensor_offset(row) == 8
        col = hg.tensor_select(t, 1, 3)
        assert json.loads(hg.tensor_strides(col)) == [4] and hg.tensor_offset(col) == 3
        scalar = hg.tensor_select(row, 0, 1)
        assert hg.tensor_shape(scalar) == "[]" and hg.tensor_numel(scalar) == 1
        assert hg.tensor_offset(scalar) == 9

    def test_contiguous_and_reshape(self, ex):
        b = upload(ex, np.arange(6, dtype=np.float32))
        t = hg.tensor_from_buffer(b, "[2, 3]")
        tt = hg.tensor_transpose(t)
        c = hg.tensor_contiguous(ex, tt)
        assert hg.tensor_is_contiguous(c) == 1 and hg.tensor_buffer(c) != b
        np.testing.assert_array_equal(download(ex, hg.tensor_buffer(c)),
                                      np.arange(6).reshape(2, 3).T.ravel())
        view = hg.tensor_reshape(ex, t, "[3, 2]")
        assert hg.tensor_buffer(view) == b
        copy = hg.tensor_reshape(ex, tt, "[6]")
        assert hg.tensor_buffer(copy) != b
        np.testing.assert_array_equal(download(ex, hg.tensor_buffer(copy)),
                                      np.arange(6).reshape(2, 3).T.ravel())

    def test_matmul_strided(self, ex):
        a = np.random.default_rng(1).standard_normal((5, 7)).astype(np.float32)
        b = np.random.default_rng(2).standard_normal((3, 7)).astype(np.float32)
        ta = hg.tensor_from_buffer(upload(ex, a), "[5, 7]")
        tb = hg.tensor_transpose(hg.tensor_from_buffer(upload(ex, b), "[3, 7]"))
        tc = hg.tensor_matmul(ex, ta, tb)
        assert json.loads(hg.tensor_shape(tc)) == [5, 3]
        got = download(ex, hg.tensor_buffer(tc)).reshape(5, 3)
        ref = a.astype(np.float64) @ b.astype(np.float64).T
        assert np.all(np.abs(got - ref) <= 1e-5 * 7 * np.abs(a).max() * np.abs(b).max())


# ---- the seed README, verbatim ---------------------------------------------------------

QUICK_START = '''
import hologram_ffi as hg
import json

# Get version information
print(f"Hologram FFI Version: {hg.get_version()}")

# Create an executor
executor_handle = hg.new_executor()

# Allocate buffers
size = 1024
a_handle = hg.executor_allocate_buffer(executor_handle, size)
b_handle = hg.executor_allocate_buffer(executor_handle, size)
c_handle = hg.executor_allocate_buffer(executor_handle, size)

# Fill buffers with data
data_a = [float(i) for i in range(size)]
data_b = [float(i * 2) for i in range(size)]
hg.buffer_copy_from_slice(executor_handle, a_handle, json.dumps(data_a))
hg.buffer_copy_from_slice(executor_handle, b_handle, json.dumps(data_b))

# Perform vector addition
hg.vector_add_f32(executor_handle, a_handle, b_handle, c_handle, size)

# Get results
result_json = hg.buffer_to_vec(executor_handle, c_handle)
result = json.loads(result_json)
print(f"First 10 results: {result[:10]}")

# Clean up resources
hg.buffer_cleanup(a_handle)
hg.buffer_cleanup(b_handle)
hg.buffer_cleanup(c_handle)
hg.executor_cleanup(executor_handle)
'''

VECTOR_ADDITION = '''
import hologram_ffi as hg
import json

# Create executor
executor = hg.new_executor()

# Allocate buffers
a = hg.executor_allocate_buffer(executor, 1024)
b = hg.executor_allocate_buffer(executor, 1024)
c = hg.executor_allocate_buffer(executor, 1024)

# Fill with data
data_a = [float(i) for i in range(1024)]
data_b = [float(i * 2) for i in range(1024)]
hg.buffer_copy_from_slice(executor, a, json.dumps(data_a))
hg.buffer_copy_from_slice(executor, b, json.dumps(data_b))

# Perform addition
hg.vector_add_f32(executor, a, b, c, 1024)

# Get results
result_json = hg.buffer_to_vec(executor, c)
result = json.loads(result_json)
print(f"First 5 results: {result[:5]}")  # [0.0, 3.0, 6.0, 9.0, 12.0]

# Cleanup
hg.buffer_cleanup(a)
hg.buffer_cleanup(b)
hg.buffer_cleanup(c)
hg.executor_cleanup(executor)
'''

NEURAL_NETWORK_LAYER = '''
import hologram_ffi as hg
import json

executor = hg.new_executor()

# Allocate buffers for 128×64 matrix and 64-element vector
size_matrix = 128 * 64
size_vec = 64
size_output = 128

matrix_buf = hg.executor_allocate_buffer(executor, size_matrix)
input_buf = hg.executor_allocate_buffer(executor, size_vec)
output_buf = hg.executor_allocate_buffer(executor, size_output)
activated_buf = hg.executor_allocate_buffer(executor, size_output)

# Fill with weights and input data...

# Linear layer: output = matrix × input
hg.matvec_f32(executor, matrix_buf, input_buf, output_buf, 128, 64)

# Apply activation: activated = sigmoid(output)
hg.sigmoid_f32(executor, output_buf, activated_buf, size_output)

# Get results
result_json = hg.buffer_to_vec(executor, activated_buf)
activations = json.loads(result_json)

# Cleanup
hg.buffer_cleanup(matrix_buf)
hg.buffer_cleanup(input_buf)
hg.buffer_cleanup(output_buf)
hg.buffer_cleanup(activated_buf)
hg.executor_cleanup(executor)
'''

TENSOR_MATMUL = '''
import hologram_ffi as hg
import json

executor = hg.new_executor()

# Create 4×8 and 8×3 matrices
a_buf = hg.executor_allocate_buffer(executor, 32)
b_buf = hg.executor_allocate_buffer(executor, 24)

# Create tensors
tensor_a = hg.tensor_from_buffer(a_buf, json.dumps([4, 8]))
tensor_b = hg.tensor_from_buffer(b_buf, json.dumps([8, 3]))

# Matrix multiply: result is 4×3
result_tensor = hg.tensor_matmul(executor, tensor_a, tensor_b)

# Get shape
shape_json = hg.tensor_shape(result_tensor)
shape = json.loads(shape_json)
print(f"Result shape: {shape}")  # [4, 3]

# Cleanup
hg.tensor_cleanup(result_tensor)
hg.tensor_cleanup(tensor_b)
hg.tensor_cleanup(tensor_a)
hg.buffer_cleanup(b_buf)
hg.buffer_cleanup(a_buf)
hg.executor_cleanup(executor)
'''

ERROR_HANDLING = '''
import hologram_ffi as hg

try:
    executor_handle = hg.new_executor()
    # ... operations ...
    hg.executor_cleanup(executor_handle)
except Exception as e:
    print(f"Error: {e}")
'''

# The README's snippet uses json without importing it (it follows the snippets above).
MEMORY_MANAGEMENT = '''
import hologram_ffi as hg

# Create resources
executor_handle = hg.new_executor()
buffer_handle = hg.executor_allocate_buffer(executor_handle, 1000)
tensor_handle = hg.tensor_from_buffer(buffer_handle, json.dumps([10, 100]))

# Use resources
# ... operations ...

# Clean up in reverse order
hg.tensor_cleanup(tensor_handle)
hg.buffer_cleanup(buffer_handle)
hg.executor_cleanup(executor_handle)
'''


def _run(source, namespace=None):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<README>", "exec"), dict(namespace or {}))
    return out.getvalue()


def test_readme_quick_start(backend):
    output = _run(QUICK_START)
    assert output == (f"Hologram FFI Version: {hg.get_version()}\n"
                      f"First 10 results: {[float(3 * i) for i in range(10)]}\n")


def test_readme_usage_examples():
    assert _run(VECTOR_ADDITION) == "First 5 results: [0.0, 3.0, 6.0, 9.0, 12.0]\n"
    assert _run(NEURAL_NETWORK_LAYER) == ""
    assert _run(TENSOR_MATMUL) == "Result shape: [4, 3]\n"
    assert _run(ERROR_HANDLING) == ""
    assert _run(MEMORY_MANAGEMENT, {"json": json}) == ""
