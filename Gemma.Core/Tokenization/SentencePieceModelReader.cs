using System.Buffers.Binary;
using System.Text;

namespace Gemma.Core.Tokenization;

/// <summary>The parts of a SentencePiece <c>ModelProto</c> a Gemma tokenizer needs.</summary>
internal sealed record SentencePieceModel(
    string[] Pieces, float[] Scores, int[] Types, int BosId, int EosId, int UnknownId, int PadId);

/// <summary>
/// A minimal protobuf reader for SentencePiece's <c>sentencepiece_model.proto</c> (<c>tokenizer.model</c>).
/// Field numbers: ModelProto { pieces = 1, trainer_spec = 2, normalizer_spec = 3 };
/// SentencePiece { piece = 1, score = 2, type = 3 (default NORMAL) };
/// TrainerSpec { model_type = 3 (default UNIGRAM), byte_fallback = 35, unk_id = 40, bos_id = 41, eos_id = 42, pad_id = 43 };
/// NormalizerSpec { name = 1, add_dummy_prefix = 3 (default true), remove_extra_whitespaces = 4 (default true) }.
/// Other fields are skipped.
/// </summary>
internal static class SentencePieceModelReader
{
    private const int ModelTypeBpe = 2;

    public static SentencePieceModel Read(byte[] data, string source)
    {
        try
        {
            return ReadModel(data, source);
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or IndexOutOfRangeException or OverflowException or DecoderFallbackException)
        {
            throw new GemmaException($"Tokenizer file '{source}' is not a valid SentencePiece model (truncated or corrupt protobuf).", e);
        }
    }

    private static SentencePieceModel ReadModel(byte[] data, string source)
    {
        var pieces = new List<string>();
        var scores = new List<float>();
        var types = new List<int>();
        int modelType = 1, unkId = 0, bosId = 1, eosId = 2, padId = -1;
        bool addDummyPrefix = true, removeExtraWhitespaces = true;
        string normalizerName = "";

        var reader = new ProtoReader(data);
        while (reader.Next(out int field, out int wire))
        {
            if (field == 1 && wire == 2)
            {
                var piece = new ProtoReader(reader.ReadBytes());
                string text = ""; float score = 0; int type = 1;
                while (piece.Next(out int f, out int w))
                {
                    if (f == 1 && w == 2) text = Encoding.UTF8.GetString(piece.ReadBytes());
                    else if (f == 2 && w == 5) score = piece.ReadFloat();
                    else if (f == 3 && w == 0) type = (int)piece.ReadVarint();
                    else piece.Skip(w);
                }
                pieces.Add(text); scores.Add(score); types.Add(type);
            }
            else if (field == 2 && wire == 2)
            {
                var spec = new ProtoReader(reader.ReadBytes());
                while (spec.Next(out int f, out int w))
                {
                    if (w != 0) { spec.Skip(w); continue; }
                    // A negative int32 (pad_id = -1) is written as a 10-byte two's complement varint: the casts restore it.
                    long v = (long)spec.ReadVarint();
                    switch (f)
                    {
                        case 3: modelType = (int)v; break;
                        case 40: unkId = (int)v; break;
                        case 41: bosId = (int)v; break;
                        case 42: eosId = (int)v; break;
                        case 43: padId = (int)v; break;
                    }
                }
            }
            else if (field == 3 && wire == 2)
            {
                var spec = new ProtoReader(reader.ReadBytes());
                while (spec.Next(out int f, out int w))
                {
                    if (f == 1 && w == 2) normalizerName = Encoding.UTF8.GetString(spec.ReadBytes());
                    else if (f == 3 && w == 0) addDummyPrefix = spec.ReadVarint() != 0;
                    else if (f == 4 && w == 0) removeExtraWhitespaces = spec.ReadVarint() != 0;
                    else spec.Skip(w);
                }
            }
            else reader.Skip(wire);
        }

        if (pieces.Count == 0) throw new GemmaException($"Tokenizer file '{source}' has no pieces: it is not a SentencePiece model.");
        if (modelType != ModelTypeBpe)
            throw new GemmaException($"Tokenizer file '{source}' is a SentencePiece model of type {modelType}; only BPE (2), Gemma's, is supported.");
        if (addDummyPrefix || removeExtraWhitespaces || normalizerName is not ("" or "identity"))
            throw new GemmaException($"Tokenizer file '{source}' normalizes text (name '{normalizerName}', add_dummy_prefix {addDummyPrefix}, " +
                $"remove_extra_whitespaces {removeExtraWhitespaces}); only Gemma's identity normalization is supported.");
        return new SentencePieceModel(pieces.ToArray(), scores.ToArray(), types.ToArray(), bosId, eosId, unkId, padId);
    }

    /// <summary>Protobuf wire-format cursor over a byte span.</summary>
    private ref struct ProtoReader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _pos;

        public bool Next(out int field, out int wire)
        {
            field = wire = 0;
            if (_pos >= _data.Length) return false;
            ulong key = ReadVarint();
            field = (int)(key >> 3);
            wire = (int)(key & 7);
            return true;
        }

        public ulong ReadVarint()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                byte b = _data[_pos++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return value;
            }
            throw new OverflowException("varint longer than 10 bytes");
        }

        public ReadOnlySpan<byte> ReadBytes()
        {
            int length = checked((int)ReadVarint());
            var slice = _data.Slice(_pos, length);
            _pos += length;
            return slice;
        }

        public float ReadFloat()
        {
            float value = BinaryPrimitives.ReadSingleLittleEndian(_data.Slice(_pos, 4));
            _pos += 4;
            return value;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: ReadVarint(); break;
                case 1: _pos = checked(_pos + 8); break;
                case 2: ReadBytes(); break;
                case 5: _pos = checked(_pos + 4); break;
                default: throw new OverflowException($"unsupported wire type {wire}");
            }
            if (_pos > _data.Length) throw new ArgumentOutOfRangeException(nameof(wire), "field runs past the end");
        }
    }
}
