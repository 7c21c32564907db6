namespace Gemma.Core.Tokenization;

/// <summary>
/// The kind of a vocabulary entry. The numbering is SentencePiece's <c>ModelProto.SentencePiece.Type</c>,
/// which GGUF's <c>tokenizer.ggml.token_type</c> array uses too, so either source maps straight onto it.
/// </summary>
public enum GemmaTokenType
{
    /// <summary>An ordinary piece produced by BPE merges.</summary>
    Normal = 1,

    /// <summary>The unknown piece (<c>&lt;unk&gt;</c>).</summary>
    Unknown = 2,

    /// <summary>A control token (<c>&lt;bos&gt;</c>, <c>&lt;start_of_turn&gt;</c>, ...): never produced from plain text
    /// unless control-token parsing is asked for.</summary>
    Control = 3,

    /// <summary>A piece matched as a whole in the raw text before BPE (<c>&lt;table&gt;</c>, newline and tab runs, ...).</summary>
    UserDefined = 4,

    /// <summary>A reserved piece that BPE never produces.</summary>
    Unused = 5,

    /// <summary>A byte-fallback piece <c>&lt;0xXX&gt;</c> standing for one UTF-8 byte.</summary>
    Byte = 6,
}
