
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
            [CompletionResult]::new('ingest-parquet', 'ingest-parquet', [CompletionResultType]::ParameterValue, 'Load Parquet files into a data directory (offline) or a running server (--host)')
            [CompletionResult]::new('train-dict', 'train-dict', [CompletionResultType]::ParameterValue, 'Train a zstd dictionary per key family from the values in a data directory and report the gain')
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
            [CompletionResult]::new('--worker-threads', '--worker-threads', [CompletionResultType]::ParameterName, 'Threads serving connections; 0 (the default) means one per CPU core')
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
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Data directory to read; if a running server holds it, that server sends the file of one instant (it must be reachable at the address in the directory''s ADDRESS file)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output file (`-` for standard output)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output file (`-` for standard output)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'Only this database (repeatable)')
            [CompletionResult]::new('--match', '--match', [CompletionResultType]::ParameterName, 'Only keys matching this glob-style pattern')
            [CompletionResult]::new('--databases', '--databases', [CompletionResultType]::ParameterName, 'Number of databases of the directory')
            [CompletionResult]::new('--password', '--password', [CompletionResultType]::ParameterName, 'Password of the running server holding the directory, if it has one (`requirepass`)')
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
            [CompletionResult]::new('--nice', '--nice', [CompletionResultType]::ParameterName, 'Run at this nice value (0-19; the default yields the CPU to a server running beside it; 0 keeps the normal priority)')
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
            [CompletionResult]::new('--nice', '--nice', [CompletionResultType]::ParameterName, 'Offline: run at this nice value (0-19; the default yields the CPU to a server running beside it; 0 keeps the normal priority)')
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
        'velo;ingest-parquet' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Data directory to load into (offline: no server may hold it)')
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'Load through a running Velo or Redis server instead of a directory')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'The server''s port (with --host)')
            [CompletionResult]::new('--password', '--password', [CompletionResultType]::ParameterName, 'The server''s password (with --host)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'Database number')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Key column (string, binary or integer)')
            [CompletionResult]::new('--key-template', '--key-template', [CompletionResultType]::ParameterName, 'Key built from several columns, e.g. ''user:{id}:{country}''')
            [CompletionResult]::new('--key-prefix', '--key-prefix', [CompletionResultType]::ParameterName, 'Prepended to every key')
            [CompletionResult]::new('--value', '--value', [CompletionResultType]::ParameterName, 'Store this column as a string value')
            [CompletionResult]::new('--columns', '--columns', [CompletionResultType]::ParameterName, 'Columns for --value-json / --value-hash, comma-separated')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'TTL in seconds for every key')
            [CompletionResult]::new('--ttl-col', '--ttl-col', [CompletionResultType]::ParameterName, 'Relative TTL from this integer column (unit: --ttl-unit) or duration column (its own unit); null: none')
            [CompletionResult]::new('--expire-at-col', '--expire-at-col', [CompletionResultType]::ParameterName, 'Absolute expiry from this timestamp column, or epoch number column in --ttl-unit; null means none')
            [CompletionResult]::new('--ttl-unit', '--ttl-unit', [CompletionResultType]::ParameterName, 'Unit of --ttl-col and of integer --expire-at-col values')
            [CompletionResult]::new('--on-existing', '--on-existing', [CompletionResultType]::ParameterName, 'A key that exists before the load: fail the run, skip the row, or replace the key')
            [CompletionResult]::new('--on-duplicate', '--on-duplicate', [CompletionResultType]::ParameterName, 'A key repeated in the input: the last row wins, the first row wins, or every repeat is rejected')
            [CompletionResult]::new('--max-errors', '--max-errors', [CompletionResultType]::ParameterName, 'Rejected rows tolerated; with more, nothing is written')
            [CompletionResult]::new('--value-json', '--value-json', [CompletionResultType]::ParameterName, 'Store the row (or --columns) as a JSON object')
            [CompletionResult]::new('--value-hash', '--value-hash', [CompletionResultType]::ParameterName, 'Store a hash with one field per column (or per --columns); null fields are left out')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Read and validate everything, write nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the summary as JSON')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress and no summary table (errors still go to stderr)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'velo;train-dict' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'The data directory to sample (with `--from-parquet`: where `--install` writes)')
            [CompletionResult]::new('--from-parquet', '--from-parquet', [CompletionResultType]::ParameterName, 'Sample the values of one column of a Parquet file instead (before loading it), as the family given by `--family`')
            [CompletionResult]::new('--column', '--column', [CompletionResultType]::ParameterName, 'The Parquet column holding the values (its cells as `velo ingest-parquet` stores them as text)')
            [CompletionResult]::new('--family', '--family', [CompletionResultType]::ParameterName, 'Train only this key family (the key up to its last separator; `(default)` for keys without one)')
            [CompletionResult]::new('--samples', '--samples', [CompletionResultType]::ParameterName, 'Values sampled per family (the first found in scan order)')
            [CompletionResult]::new('--size', '--size', [CompletionResultType]::ParameterName, 'Dictionary size in bytes')
            [CompletionResult]::new('--separators', '--separators', [CompletionResultType]::ParameterName, 'Bytes that end a family prefix (as the server''s velo-dict-separators)')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Train every family with enough values')
            [CompletionResult]::new('--install', '--install', [CompletionResultType]::ParameterName, 'Write each trained dictionary into the directory (which no server may hold) for new writes to use')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document (shape: docs/tools.md)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
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
            [CompletionResult]::new('ingest-parquet', 'ingest-parquet', [CompletionResultType]::ParameterValue, 'Load Parquet files into a data directory (offline) or a running server (--host)')
            [CompletionResult]::new('train-dict', 'train-dict', [CompletionResultType]::ParameterValue, 'Train a zstd dictionary per key family from the values in a data directory and report the gain')
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
        'velo;help;ingest-parquet' {
            break
        }
        'velo;help;train-dict' {
            break
        }
        'velo;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
