using System.Text.Json;
using System.Text.Json.Nodes;
using Gemma.Core;
using Gemma.Core.Constraints;
using Gemma.Core.Generation;
using Gemma.Tests.Generation;
using Gemma.Tests.Tokenization;
using Json.Schema;
using NUnit.Framework;

namespace Gemma.Tests.Constraints;

/// <summary>
/// Outputs generated under JSON schemas are checked with an independent validator (JsonSchema.Net, format
/// validation on), over many schemas and seeds, with random logits at both vocabularies and with the demo model.
/// </summary>
[TestFixture]
public class JsonSchemaConstraintTests
{
    public static readonly string[] Schemas =
    [
        """{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0,"maximum":150}},"required":["name","age"],"additionalProperties":false}""",
        """{"type":["string","null"]}""",
        """{"type":"array","items":{"type":"number"},"minItems":2,"maxItems":4}""",
        """{"type":"array","prefixItems":[{"type":"string"},{"type":"boolean"}],"items":false}""",
        """{"type":"array","prefixItems":[{"type":"integer"}],"items":{"type":"null"},"minItems":1,"maxItems":3}""",
        """{"enum":["red","green",1,null,{"a":[1,2]}]}""",
        """{"const":"fixed \"quoted\" ü"}""",
        """{"anyOf":[{"type":"integer"},{"type":"string","maxLength":3}]}""",
        """{"oneOf":[{"type":"object","properties":{"kind":{"const":"a"},"x":{"type":"integer"}},"required":["kind","x"],"additionalProperties":false},{"type":"object","properties":{"kind":{"const":"b"},"y":{"type":"string"}},"required":["kind"],"additionalProperties":false}]}""",
        """{"oneOf":[{"type":"integer"},{"type":"boolean"},{"type":"null"}]}""",
        """{"allOf":[{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]},{"properties":{"b":{"type":"boolean"}},"required":["b"]}]}""",
        """{"$defs":{"node":{"type":"object","properties":{"value":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["value"],"additionalProperties":false}},"$ref":"#/$defs/node"}""",
        """{"$defs":{"p":{"type":"string","format":"date"}},"type":"object","properties":{"d":{"$ref":"#/$defs/p"}},"required":["d"],"additionalProperties":false}""",
        """{"type":"string","minLength":2,"maxLength":5}""",
        """{"type":"string","pattern":"^[A-Z]{2}-\\d{3}$"}""",
        """{"type":"string","pattern":"ab+c"}""",
        """{"type":"string","pattern":"^(\"|\\\\|x)+$"}""",
        """{"type":"string","format":"date"}""",
        """{"type":"string","format":"date-time"}""",
        """{"type":"string","format":"time"}""",
        """{"type":"string","format":"uuid"}""",
        """{"type":"string","format":"email"}""",
        """{"type":"number","minimum":-1.5,"maximum":2.5}""",
        """{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1}""",
        """{"type":"integer","exclusiveMinimum":-10,"maximum":-3}""",
        """{"type":"integer","minimum":100}""",
        """{"type":"number","maximum":-0.25}""",
        """{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"],"additionalProperties":{"type":"string","maxLength":4}}""",
        """{"type":"object","additionalProperties":{"type":"integer"}}""",
        """{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"boolean"}},"additionalProperties":false}""",
        """{"type":"object","required":["x"]}""",
        """{}""",
        """{"type":"array","items":{"type":"object","properties":{"k":{"enum":["x","y"]},"v":{"type":["number","null"]}},"required":["k"],"additionalProperties":false}}""",
        """{"$schema":"https://json-schema.org/draft/2020-12/schema","title":"t","description":"d","type":"boolean"}""",
        // Written for the mask-speed work, not tuned against: nested arrays of objects, anyOf of objects, formats,
        // unicode enums with a maxLength string, patterns.
        """{"type":"object","properties":{"orders":{"type":"array","items":{"type":"object","properties":{"id":{"type":"integer"},"lines":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string","pattern":"^[A-Z]{3}-[0-9]{4}$"},"qty":{"type":"integer","minimum":1,"maximum":99}},"required":["sku","qty"]},"maxItems":3}},"required":["id","lines"]},"maxItems":3}},"required":["orders"]}""",
        """{"anyOf":[{"type":"object","properties":{"kind":{"const":"circle"},"r":{"type":"number","minimum":0}},"required":["kind","r"],"additionalProperties":false},{"type":"object","properties":{"kind":{"const":"rect"},"w":{"type":"number"},"h":{"type":"number"}},"required":["kind","w","h"],"additionalProperties":false}]}""",
        """{"type":"object","properties":{"id":{"type":"string","format":"uuid"},"at":{"type":"string","format":"date-time"},"day":{"type":"string","format":"date"},"mail":{"type":"string","format":"email"}},"required":["id","at","day","mail"]}""",
        """{"type":"object","properties":{"city":{"enum":["東京","大阪","京都","Zürich","São Paulo"]},"mood":{"enum":["😀","😢",null,1]},"note":{"type":"string","maxLength":20}},"required":["city","mood","note"]}""",
        """{"type":"object","properties":{"code":{"type":"string","pattern":"^[A-Z]{2}[0-9]{2,4}$"},"phone":{"type":"string","pattern":"^\\+[0-9]{1,3} [0-9]{3}-[0-9]{4}$"},"slug":{"type":"string","pattern":"^[a-z0-9]+(-[a-z0-9]+)*$"}},"required":["code","phone","slug"]}""",
    ];

    private static readonly EvaluationOptions Validation = new() { RequireFormatValidation = true, OutputFormat = OutputFormat.List };

    internal static void AssertValid(string schemaText, string output)
    {
        JsonElement instance;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(output);
            instance = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            Assert.Fail($"not JSON: {output}\n{e.Message}");
            return;
        }
        var schema = JsonSchema.FromText(schemaText);
        EvaluationResults result = schema.Evaluate(instance, Validation);
        Assert.That(result.IsValid, Is.True, () => $"schema {schemaText}\noutput {output}\n" +
            string.Join("\n", (result.Details ?? []).Where(d => d.Errors is not null).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}"))));
    }

    [Test]
    public void RandomWalks_DemoVocabulary_AlwaysValidate([Range(0, 38)] int schemaIndex)
    {
        string schema = Schemas[schemaIndex];
        var constraint = OutputConstraint.FromJsonSchema(schema);
        int finished = 0;
        for (int seed = 0; seed < 12; seed++)
        {
            // Budgets from tight to loose; the formats schema (36) needs ≈ 110 bytes at least (a uuid, a date-time, …).
            var r = ConstraintHarness.Run(constraint, TokenizerFixtures.Demo, seed, maxTokens: (schemaIndex == 36 ? 112 : 24) + seed * 8);
            if (!r.Finished) continue;
            finished++;
            AssertValid(schema, r.Text);
        }
        Assert.That(finished, Is.GreaterThan(0), "no walk finished within its budget");
    }

    [Test]
    public void RandomWalks_FullVocabulary_UnseenSchemas_AlwaysValidate([Range(34, 38)] int schemaIndex)
    {
        string schema = Schemas[schemaIndex];
        var constraint = OutputConstraint.FromJsonSchema(schema);
        for (int seed = 0; seed < 3; seed++)
        {
            var r = ConstraintHarness.Run(constraint, TokenizerFixtures.Full, seed, maxTokens: 160);
            Assert.That(r.Finished, Is.True, r.Text);
            AssertValid(schema, r.Text);
        }
    }

    [Test]
    public void RandomWalks_FullVocabulary_AlwaysValidate([Values(0, 8, 11, 14, 18, 22, 27, 32)] int schemaIndex)
    {
        string schema = Schemas[schemaIndex];
        var constraint = OutputConstraint.FromJsonSchema(schema);
        for (int seed = 0; seed < 3; seed++)
        {
            var r = ConstraintHarness.Run(constraint, TokenizerFixtures.Full, seed, maxTokens: 40);
            Assert.That(r.Finished, Is.True, r.Text);
            AssertValid(schema, r.Text);
        }
    }

    [Test]
    public void TightBudget_FinishesWithTheShortestCompletions()
    {
        // Shortest output: {"name": "", "age": 0} = 22 bytes; every budget from there on must end valid and complete.
        string schema = Schemas[0];
        var constraint = OutputConstraint.FromJsonSchema(schema);
        for (int budget = 23; budget < 40; budget++)
        {
            var r = ConstraintHarness.Run(constraint, TokenizerFixtures.Demo, budget, budget);
            Assert.That(r.Finished, Is.True, $"budget {budget}: {r.Text}");
            AssertValid(schema, r.Text);
        }
    }

    [Test]
    public void BudgetTooSmall_EndsWithLength_AndStaysAPrefix()
    {
        var constraint = OutputConstraint.FromJsonSchema(Schemas[0]);
        var r = ConstraintHarness.Run(constraint, TokenizerFixtures.Demo, 1, maxTokens: 5);
        Assert.That(r.Finished, Is.False);
        Assert.That(r.Tokens, Is.EqualTo(5));
        Assert.That(r.Text, Does.StartWith("{\""));
    }

    [Test]
    public void DemoModel_GeneratesValidJson_ForManySchemasAndSeeds([Values(0, 2, 5, 8, 11, 13, 17, 22, 27, 32)] int schemaIndex)
    {
        string schema = Schemas[schemaIndex];
        var constraint = OutputConstraint.FromJsonSchema(schema);
        GemmaModel model = DemoModel.Instance;
        using var generator = new TextGenerator(model, 512);
        int[] prompt = model.Tokenizer!.EncodeToIds("<start_of_turn>user\nGive me JSON.<end_of_turn>\n<start_of_turn>model\n", addBos: true);
        for (int seed = 0; seed < 4; seed++)
        {
            var options = new SamplingOptions { Seed = seed, Temperature = 1f, MaxTokens = 48, Constraint = constraint };
            string text = string.Concat(generator.Generate(prompt, options));
            Assert.That(generator.LastStats!.FinishReason, Is.EqualTo(FinishReason.EndOfTurn), text);
            AssertValid(schema, text);
        }
    }

    [Test]
    public void DemoModel_Greedy_IsDeterministicAndValid()
    {
        var constraint = OutputConstraint.FromJsonSchema(Schemas[0]);
        GemmaModel model = DemoModel.Instance;
        using var generator = new TextGenerator(model, 256);
        int[] prompt = model.Tokenizer!.EncodeToIds("Person:", addBos: true);
        var options = SamplingOptions.Greedy with { MaxTokens = 40, Constraint = constraint };
        string a = string.Concat(generator.Generate(prompt, options));
        string b = string.Concat(generator.Generate(prompt, options));
        Assert.That(b, Is.EqualTo(a));
        AssertValid(Schemas[0], a);
    }
}
