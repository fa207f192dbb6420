
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'velo' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'velo'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'velo' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the RESP server on a data directory')
            [CompletionResult]::new('rdb-restore', 'rdb-restore', [CompletionResultType]::ParameterValue, 'Load RDB files into a data directory (offline) or a running server (`--host`)')
            [CompletionResult]::new('rdb-dump', 'rdb-dump', [CompletionResultType]::ParameterValue, 'Write the keys of a data directory as an RDB file (version 10, as Redis 7.0 writes)')
            [CompletionResult]::new('inspect-bucket', 'inspect-bucket', [CompletionResultType]::ParameterValue, 'Show a key''s path through the data files (slot, bucket, pages, cell, record, WAL), or one bucket')
            [CompletionResult]::new('inspect-segment', 'inspect-segment', [CompletionResultType]::ParameterValue, 'Show a chunk file''s segments and records, live or garbage, with its live share')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Verify every file of a data directory and the references between them')
            [CompletionResult]::new('bigkeys', 'bigkeys', [CompletionResultType]::ParameterValue, 'The largest keys per type and the sizes of key families, from the files or from a server')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (bash, zsh, fish, elvish, powershell)')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Write every completion script and man page under DIR/completions and DIR/man')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'velo;serve' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (Redis syntax: `name value` per line); flags override it')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'TCP port [default: 7379]; 0 picks a free port (printed at startup)')
            [CompletionResult]::new('--bind', '--bind', [CompletionResultType]::ParameterName, 'Address to listen on [default: 127.0.0.1]')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Data directory [default: ./velo-data]')
            [CompletionResult]::new('--slots', '--slots', [CompletionResultType]::ParameterName, 'Internal slots of a new data directory (power of two, 1..=1024) [default: 8]')
            [CompletionResult]::new('--fsync', '--fsync', [CompletionResultType]::ParameterName, 'WAL durability: always, everysec or no [default: everysec]')
            [CompletionResult]::new('--page-cache', '--page-cache', [CompletionResultType]::ParameterName, 'Key-bucket page cache size, e.g. 64mb [default: 64mb]')
            [CompletionResult]::new('--value-cache', '--value-cache', [CompletionResultType]::ParameterName, 'Value cache size, e.g. 64mb [default: 64mb]')
            [CompletionResult]::new('--maxclients', '--maxclients', [CompletionResultType]::ParameterName, 'Maximum simultaneous clients [default: 10000]')
            [CompletionResult]::new('--databases', '--databases', [CompletionResultType]::ParameterName, 'Number of databases [default: 16]')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Log level: error, warn, info, debug or trace [default: info]')
            [CompletionResult]::new('--dbfilename', '--dbfilename', [CompletionResultType]::ParameterName, 'File name of RDB snapshots (SAVE, BGSAVE) in the data directory [default: dump.rdb]. Redis 7.0 protects it from CONFIG SET, so it is set here or in the config file')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'velo;rdb-restore' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Data directory to load into while no server runs on it (created if missing)')
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'Load into a running Redis or Velo server instead, with pipelined RESTORE commands')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port of `--host`')
            [CompletionResult]::new('--password', '--password', [CompletionResultType]::ParameterName, 'Password of `--host` (AUTH)')
            [CompletionResult]::new('--db-map', '--db-map', [CompletionResultType]::ParameterName, 'Load source database SRC into database DST (repeatable); others keep their number')
            [CompletionResult]::new('--on-existing', '--on-existing', [CompletionResultType]::ParameterName, 'What to do when a key already exists: `fail` writes nothing at all if any does')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Read and check the files, write nothing')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'Fail on module values instead of skipping them')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the summary as JSON on standard output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'velo;rdb-dump' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Data directory to read (no server may be running on it)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output file (`-` for standard output)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output file (`-` for standard output)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'Only this database (repeatable)')
            [CompletionResult]::new('--match', '--match', [CompletionResultType]::ParameterName, 'Only keys matching this glob-style pattern')
            [CompletionResult]::new('--databases', '--databases', [CompletionResultType]::ParameterName, 'Number of databases of the directory')
            [CompletionResult]::new('--no-compression', '--no-compression', [CompletionResultType]::ParameterName, 'Do not LZF-compress strings (Redis''s `rdbcompression no`)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the summary as JSON (on standard error when the RDB goes to standard output)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'velo;inspect-bucket' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'The data directory (may be held by a running server; nothing is written)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Follow this key''s path (bytes as given on the command line)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The key''s database')
            [CompletionResult]::new('--slot', '--slot', [CompletionResultType]::ParameterName, 'Show one bucket of this internal slot instead (with --bucket)')
            [CompletionResult]::new('--bucket', '--bucket', [CompletionResultType]::ParameterName, 'The bucket to show (with --slot)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document (shape: docs/tools.md)')
            [CompletionResult]::new('--values', '--values', [CompletionResultType]::ParameterName, 'Show values (escaped, first 256 bytes)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'velo;inspect-segment' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'The data directory (may be held by a running server; nothing is written)')
            [CompletionResult]::new('--slot', '--slot', [CompletionResultType]::ParameterName, 'The internal slot')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'A chunk file (id, or name `chunk-NNNNNNNN.dat`) or big-value file (`big-<id>.val`)')
            [CompletionResult]::new('--offset', '--offset', [CompletionResultType]::ParameterName, 'Only the segment starting at this byte offset of the chunk file')
            [CompletionResult]::new('--segment', '--segment', [CompletionResultType]::ParameterName, 'One segment as `FILE:OFFSET` (chunk file id and byte offset, as cells show their location)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document (shape: docs/tools.md)')
            [CompletionResult]::new('--values', '--values', [CompletionResultType]::ParameterName, 'Show values (escaped, first 256 bytes)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'velo;check' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'The data directory (may be held by a running server; nothing is written)')
            [CompletionResult]::new('--slot', '--slot', [CompletionResultType]::ParameterName, 'Check only this internal slot')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document (shape: docs/tools.md)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'velo;bigkeys' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Read this data directory (offline; may be held by a running server)')
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'Ask this server instead (Velo or Redis), through SCAN, TYPE, MEMORY USAGE and length commands')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'The server''s port')
            [CompletionResult]::new('--password', '--password', [CompletionResultType]::ParameterName, 'AUTH password (or the VELO_PASSWORD environment variable)')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'AUTH user name (with --password)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'Only this database (offline default: all; online default: 0)')
            [CompletionResult]::new('--top', '--top', [CompletionResultType]::ParameterName, 'Keys to list per type and measure')
            [CompletionResult]::new('--families', '--families', [CompletionResultType]::ParameterName, 'Key families to list (largest stored bytes first)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document (shape: docs/tools.md)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'velo;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'velo;generate' {
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Where to write `completions/` and `man/` (the repository root when blessing)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'velo;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the RESP server on a data directory')
            [CompletionResult]::new('rdb-restore', 'rdb-restore', [CompletionResultType]::ParameterValue, 'Load RDB files into a data directory (offline) or a running server (`--host`)')
            [CompletionResult]::new('rdb-dump', 'rdb-dump', [CompletionResultType]::ParameterValue, 'Write the keys of a data directory as an RDB file (version 10, as Redis 7.0 writes)')
            [CompletionResult]::new('inspect-bucket', 'inspect-bucket', [CompletionResultType]::ParameterValue, 'Show a key''s path through the data files (slot, bucket, pages, cell, record, WAL), or one bucket')
            [CompletionResult]::new('inspect-segment', 'inspect-segment', [CompletionResultType]::ParameterValue, 'Show a chunk file''s segments and records, live or garbage, with its live share')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Verify every file of a data directory and the references between them')
            [CompletionResult]::new('bigkeys', 'bigkeys', [CompletionResultType]::ParameterValue, 'The largest keys per type and the sizes of key families, from the files or from a server')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (bash, zsh, fish, elvish, powershell)')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Write every completion script and man page under DIR/completions and DIR/man')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'velo;help;serve' {
            break
        }
        'velo;help;rdb-restore' {
            break
        }
        'velo;help;rdb-dump' {
            break
        }
        'velo;help;inspect-bucket' {
            break
        }
        'velo;help;inspect-segment' {
            break
        }
        'velo;help;check' {
            break
        }
        'velo;help;bigkeys' {
            break
        }
        'velo;help;completions' {
            break
        }
        'velo;help;generate' {
            break
        }
        'velo;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
