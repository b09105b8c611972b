"""Buffer data transfer and operations: JSON in and out (NaN/Infinity included), partial
copies, fill and copy of the first n elements, and NumPy zero-copy transfer."""
import json
import math

import hologram_ffi as hg


def main():
    executor = hg.new_executor()
    buf = hg.executor_allocate_buffer(executor, 6)
    hg.buffer_copy_from_slice(executor, buf, json.dumps([0.1, -2, math.inf, math.nan]))
    print(f"partial JSON copy  -> {hg.buffer_to_vec(executor, buf)}")
    hg.buffer_fill(executor, buf, 7.5, 3)
    print(f"fill first 3 = 7.5 -> {hg.buffer_to_vec(executor, buf)}")
    other = hg.executor_allocate_buffer(executor, 6)
    hg.buffer_copy(executor, buf, other, 4)
    print(f"copy first 4       -> {hg.buffer_to_vec(executor, other)}")

    try:
        import numpy as np
    except ImportError:
        print("NumPy not installed: skipping the zero-copy helpers")
    else:
        big = hg.executor_allocate_buffer(executor, 1_000_000)
        data = np.linspace(0, 1, 1_000_000, dtype=np.float32)
        hg.buffer_copy_from_numpy(executor, big, data)
        hg.sigmoid_f32(executor, big, big, 1_000_000)
        back = hg.buffer_to_numpy(executor, big)
        print(f"NumPy round trip of 1M floats through sigmoid: first {back[:3]}, "
              f"last {back[-1]:.6f}, max |err| vs NumPy "
              f"{np.abs(back - 1 / (1 + np.exp(-data.astype(np.float64)))).max():.2e}")
    hg.executor_cleanup(executor)


if __name__ == "__main__":
    main()
