"""Advanced tensor operations: strided views, select, reshape (view or copy), contiguous
copies and matmul of transposed operands, checked against plain Python."""
import json

import hologram_ffi as hg


def values(executor, tensor):
    """The tensor's elements in row-major order (via a contiguous copy)."""
    copy = hg.tensor_contiguous(executor, tensor)
    result = json.loads(hg.buffer_to_vec(executor, hg.tensor_buffer(copy)))
    buffer = hg.tensor_buffer(copy)
    hg.tensor_cleanup(copy)
    hg.buffer_cleanup(buffer)
    return result


def main():
    executor = hg.new_executor()
    buf = hg.executor_allocate_buffer(executor, 24)
    hg.buffer_copy_from_slice(executor, buf, json.dumps(list(range(24))))
    t = hg.tensor_from_buffer(buf, "[2, 3, 4]")
    print(f"t: shape {hg.tensor_shape(t)} strides {hg.tensor_strides(t)} "
          f"ndim {hg.tensor_ndim(t)} numel {hg.tensor_numel(t)}")

    plane = hg.tensor_select(t, 0, 1)
    column = hg.tensor_select(plane, 1, 2)
    print(f"t[1] offset {hg.tensor_offset(plane)}; t[1][:, 2] = {values(executor, column)}")

    every_other = hg.tensor_from_buffer_with_strides(buf, "[3, 4]", "[8, 2]")
    print(f"strided [3x4] view, strides [8, 2]: {values(executor, every_other)}")

    flat = hg.tensor_reshape(executor, t, "[6, 4]")
    print(f"reshape of a contiguous tensor is a view: "
          f"{hg.tensor_buffer(flat) == buf}")
    mt = hg.tensor_transpose(flat)
    copied = hg.tensor_reshape(executor, mt, "[24]")
    print(f"reshape of its transpose copies: {hg.tensor_buffer(copied) != buf}, "
          f"first 6 = {values(executor, copied)[:6]}")

    product = hg.tensor_matmul(executor, mt, flat)        # [4x6].[6x4]
    got = values(executor, product)
    rows = [[r * 4 + c for c in range(4)] for r in range(6)]
    expected = [sum(rows[k][i] * rows[k][j] for k in range(6)) for i in range(4)
                for j in range(4)]
    print(f"(t as 6x4)^T . (t as 6x4) = {got}")
    print(f"matches plain Python: {got == expected}")
    hg.executor_cleanup(executor)                          # tensors and copies too


if __name__ == "__main__":
    main()
