using Gemma.Core;
using Gemma.Core.Config;
using NUnit.Framework;

namespace Gemma.Tests.Model;

[Category("Model")]
public class ConfigTests
{
    // The config.json of google/gemma-2-2b-jpn-it, written out here (not read from the code under test).
    private const string Gemma2_2bJpnIt = """
    {
      "architectures": ["Gemma2ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
      "attn_logit_softcapping": 50.0, "bos_token_id": 2, "cache_implementation": "hybrid",
      "eos_token_id": [1, 107], "final_logit_softcapping": 30.0, "head_dim": 256,
      "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 2304,
      "initializer_range": 0.02, "intermediate_size": 9216, "max_position_embeddings": 8192,
      "model_type": "gemma2", "num_attention_heads": 8, "num_hidden_layers": 26, "num_key_value_heads": 4,
      "pad_token_id": 0, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
      "sliding_window": 4096, "torch_dtype": "bfloat16", "transformers_version": "4.44.2",
      "use_cache": true, "vocab_size": 256000
    }
    """;

    [Test]
    public void ReadsTheRealGemma2_2bJpnItConfig()
    {
        GemmaConfig c = GemmaConfigReader.Parse(Gemma2_2bJpnIt, "config.json");
        Assert.Multiple(() =>
        {
            Assert.That(c.Family, Is.EqualTo(GemmaFamily.Gemma2));
            Assert.That(c.VocabSize, Is.EqualTo(256000));
            Assert.That(c.HiddenSize, Is.EqualTo(2304));
            Assert.That(c.IntermediateSize, Is.EqualTo(9216));
            Assert.That(c.NumLayers, Is.EqualTo(26));
            Assert.That(c.NumHeads, Is.EqualTo(8));
            Assert.That(c.NumKvHeads, Is.EqualTo(4));
            Assert.That(c.HeadDim, Is.EqualTo(256));
            Assert.That(c.SlidingWindow, Is.EqualTo(4096));
            Assert.That(c.QueryPreAttnScalar, Is.EqualTo(256));
            Assert.That(c.AttnLogitSoftcapping, Is.EqualTo(50.0));
            Assert.That(c.FinalLogitSoftcapping, Is.EqualTo(30.0));
            Assert.That(c.RopeTheta, Is.EqualTo(10000.0));
            Assert.That(c.RmsNormEps, Is.EqualTo(1e-6));
            Assert.That(c.EosTokenIds, Is.EqualTo(new[] { 1, 107 }));
            Assert.That(c.BosTokenId, Is.EqualTo(2));
            Assert.That(c.MaxPositionEmbeddings, Is.EqualTo(8192));
            // No layer_types key: the Gemma 2 rule, even layers slide.
            Assert.That(c.LayerTypes[0], Is.EqualTo(AttentionKind.Sliding));
            Assert.That(c.LayerTypes[1], Is.EqualTo(AttentionKind.Full));
            Assert.That(c.LayerTypes[24], Is.EqualTo(AttentionKind.Sliding));
            Assert.That(c.LayerTypes[25], Is.EqualTo(AttentionKind.Full));
            Assert.That(c.AttentionWindow(0), Is.EqualTo(4096));
            Assert.That(c.AttentionWindow(1), Is.EqualTo(int.MaxValue));
        });
    }

    [Test]
    public void ExplicitNullSoftCapsMeanNoSoftCap()
    {
        string json = Gemma2_2bJpnIt.Replace("\"attn_logit_softcapping\": 50.0", "\"attn_logit_softcapping\": null")
            .Replace("\"final_logit_softcapping\": 30.0", "\"final_logit_softcapping\": null");
        GemmaConfig c = GemmaConfigReader.Parse(json, "config.json");
        Assert.That(c.AttnLogitSoftcapping, Is.Null);
        Assert.That(c.FinalLogitSoftcapping, Is.Null);
    }

    [Test]
    public void RopeThetaIsReadFromRopeParameters()
    {
        string json = Gemma2_2bJpnIt.Replace("\"rope_theta\": 10000.0", "\"rope_parameters\": {\"rope_theta\": 12345.0, \"rope_type\": \"default\"}");
        Assert.That(GemmaConfigReader.Parse(json, "config.json").RopeTheta, Is.EqualTo(12345.0));
    }

    [Test]
    public void LayerTypesOverrideTheAlternatingRule()
    {
        string types = string.Join(",", Enumerable.Range(0, 26).Select(i => i < 3 ? "\"full_attention\"" : "\"sliding_attention\""));
        string json = Gemma2_2bJpnIt.Replace("\"sliding_window\": 4096", $"\"sliding_window\": 4096, \"layer_types\": [{types}]");
        GemmaConfig c = GemmaConfigReader.Parse(json, "config.json");
        Assert.That(c.LayerTypes[0], Is.EqualTo(AttentionKind.Full));
        Assert.That(c.LayerTypes[3], Is.EqualTo(AttentionKind.Sliding));
    }

    [TestCase("\"model_type\": \"gemma2\"", "\"model_type\": \"llama\"", "unsupported model_type 'llama'")]
    [TestCase("\"hidden_size\": 2304,", "", "missing \"hidden_size\"")]
    [TestCase("\"num_key_value_heads\": 4", "\"num_key_value_heads\": 3", "not a multiple")]
    [TestCase("\"hidden_size\": 2304", "\"hidden_size\": -5", "hidden_size")]
    [TestCase("\"hidden_activation\": \"gelu_pytorch_tanh\"", "\"hidden_activation\": \"relu\"", "unsupported hidden_activation")]
    [TestCase("\"eos_token_id\": [1, 107]", "\"eos_token_id\": [1, 999999]", "outside the vocabulary")]
    [TestCase("\"vocab_size\": 256000", "\"vocab_size\": \"many\"", "vocab_size")]
    [TestCase("{", "[", "not valid JSON")]
    public void BadConfigsGiveAClearError(string from, string to, string message)
    {
        string json = Gemma2_2bJpnIt.Replace(from, to);
        Assert.That(json, Is.Not.EqualTo(Gemma2_2bJpnIt), "the test must actually change the config");
        var e = Assert.Throws<GemmaException>(() => GemmaConfigReader.Parse(json, "/models/x/config.json"))!;
        Assert.That(e.Message, Does.Contain("/models/x/config.json").And.Contain(message));
    }
}
