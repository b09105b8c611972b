"""Simple executor workflow: create, allocate, compute, read back, clean up."""
import json

import hologram_ffi as hg


def main():
    executor = hg.new_executor()
    print(f"Created executor {executor:#x}")
    size = 16
    x = hg.executor_allocate_buffer(executor, size)
    y = hg.executor_allocate_buffer(executor, size)
    out = hg.executor_allocate_buffer(executor, size)
    hg.buffer_copy_from_slice(executor, x, json.dumps([float(i) for i in range(size)]))
    hg.buffer_fill(executor, y, 10.0, size)

    hg.vector_mul_f32(executor, x, y, out, size)          # out = x * 10
    hg.scalar_add_f32(executor, out, out, size, 1.0)      # out += 1, in place
    print(f"10*x + 1 = {json.loads(hg.buffer_to_vec(executor, out))}")

    total = hg.reduce_sum_f32(executor, out, y, size)
    print(f"sum = {total} (expected {sum(10 * i + 1 for i in range(size))})")

    for handle in (x, y, out):
        hg.buffer_cleanup(handle)
    hg.executor_cleanup(executor)
    print("Cleaned up")


if __name__ == "__main__":
    main()
