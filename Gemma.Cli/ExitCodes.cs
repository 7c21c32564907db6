namespace Gemma.Cli;

/// <summary>Process exit codes of the gemma command.</summary>
internal static class ExitCodes
{
    /// <summary>Done.</summary>
    public const int Success = 0;
    /// <summary>Bad command line (System.CommandLine reports parse errors with 1 too).</summary>
    public const int Usage = 1;
    /// <summary>The model or another input file could not be used.</summary>
    public const int BadInput = 2;
    /// <summary>Interrupted by the user (Ctrl-C).</summary>
    public const int Cancelled = 130;
}
