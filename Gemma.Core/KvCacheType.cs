namespace Gemma.Core;

/// <summary>How a <see cref="Model.KvCache"/> stores keys and values.</summary>
public enum KvCacheType
{
    /// <summary>IEEE float32: what the model computes, bit-exact with the reference (the default).</summary>
    Float32,

    /// <summary>
    /// IEEE half precision (round to nearest even on write, exact widening on read): half the memory and half the
    /// bytes attention reads. Logits move by up to ≈ 0.25 on the tiny golden models (more than the 1e-3 the float32
    /// path holds; bfloat16 moved them by up to ≈ 2.2 and is not offered); values beyond ±65504 become infinite.
    /// </summary>
    Float16,
}
