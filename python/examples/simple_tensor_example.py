"""Simple tensor operations: a 2x3 view, its transpose, and a matrix product."""
import json

import hologram_ffi as hg


def main():
    executor = hg.new_executor()
    buf = hg.executor_allocate_buffer(executor, 6)
    hg.buffer_copy_from_slice(executor, buf, json.dumps([1, 2, 3, 4, 5, 6]))

    a = hg.tensor_from_buffer(buf, json.dumps([2, 3]))
    print(f"A: shape {hg.tensor_shape(a)}, strides {hg.tensor_strides(a)}, "
          f"contiguous {hg.tensor_is_contiguous(a)}")
    at = hg.tensor_transpose(a)
    print(f"A^T: shape {hg.tensor_shape(at)}, strides {hg.tensor_strides(at)}, "
          f"contiguous {hg.tensor_is_contiguous(at)}")

    product = hg.tensor_matmul(executor, a, at)           # [2x3].[3x2] = [2x2]
    values = json.loads(hg.buffer_to_vec(executor, hg.tensor_buffer(product)))
    print(f"A.A^T: shape {hg.tensor_shape(product)} = {values}")   # [14, 32, 32, 77]

    for t in (product, at, a):
        hg.tensor_cleanup(t)
    hg.executor_cleanup(executor)


if __name__ == "__main__":
    main()
