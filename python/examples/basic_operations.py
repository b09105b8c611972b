"""Version info and basic usage: vector arithmetic, activations and reductions through the
flat API with JSON transfer (as in the seed README)."""
import json

import hologram_ffi as hg


def main():
    print(f"Hologram FFI Version: {hg.get_version()} (backend: {hg.get_backend()})")
    executor = hg.new_executor()
    a = hg.executor_allocate_buffer(executor, 8)
    b = hg.executor_allocate_buffer(executor, 8)
    c = hg.executor_allocate_buffer(executor, 8)
    hg.buffer_copy_from_slice(executor, a, json.dumps([1, 2, 3, 4, -5, -6, 7, 8]))
    hg.buffer_copy_from_slice(executor, b, json.dumps([0.5] * 8))

    for op in ("vector_add_f32", "vector_sub_f32", "vector_mul_f32", "vector_div_f32",
               "vector_min_f32", "vector_max_f32"):
        getattr(hg, op)(executor, a, b, c, 8)
        print(f"{op:16} -> {json.loads(hg.buffer_to_vec(executor, c))}")
    for op in ("vector_abs_f32", "vector_neg_f32", "vector_relu_f32", "sigmoid_f32",
               "tanh_f32", "gelu_f32", "softmax_f32"):
        getattr(hg, op)(executor, a, c, 8)
        values = [round(v, 4) for v in json.loads(hg.buffer_to_vec(executor, c))]
        print(f"{op:16} -> {values}")
    hg.vector_clip_f32(executor, a, c, 8, -2.0, 4.0)
    print(f"{'clip(-2, 4)':16} -> {json.loads(hg.buffer_to_vec(executor, c))}")
    print(f"sum = {hg.reduce_sum_f32(executor, a, c, 8)}, "
          f"min = {hg.reduce_min_f32(executor, a, c, 8)}, "
          f"max = {hg.reduce_max_f32(executor, a, c, 8)}")
    hg.executor_cleanup(executor)       # frees a, b and c too


if __name__ == "__main__":
    main()
