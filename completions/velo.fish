# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_velo_global_optspecs
    string join \n h/help V/version
end

function __fish_velo_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_velo_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_velo_using_subcommand
    set -l cmd (__fish_velo_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c velo -n "__fish_velo_needs_command" -s h -l help -d 'Print help'
complete -c velo -n "__fish_velo_needs_command" -s V -l version -d 'Print version'
complete -c velo -n "__fish_velo_needs_command" -f -a "serve" -d 'Run the RESP server on a data directory'
complete -c velo -n "__fish_velo_needs_command" -f -a "rdb-restore" -d 'Load RDB files into a data directory (offline) or a running server (`--host`)'
complete -c velo -n "__fish_velo_needs_command" -f -a "rdb-dump" -d 'Write the keys of a data directory as an RDB file (version 10, as Redis 7.0 writes)'
complete -c velo -n "__fish_velo_needs_command" -f -a "inspect-bucket" -d 'Show a key\'s path through the data files (slot, bucket, pages, cell, record, WAL), or one bucket'
complete -c velo -n "__fish_velo_needs_command" -f -a "inspect-segment" -d 'Show a chunk file\'s segments and records, live or garbage, with its live share'
complete -c velo -n "__fish_velo_needs_command" -f -a "check" -d 'Verify every file of a data directory and the references between them'
complete -c velo -n "__fish_velo_needs_command" -f -a "bigkeys" -d 'The largest keys per type and the sizes of key families, from the files or from a server'
complete -c velo -n "__fish_velo_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c velo -n "__fish_velo_needs_command" -f -a "generate" -d 'Write every completion script and man page under DIR/completions and DIR/man'
complete -c velo -n "__fish_velo_needs_command" -f -a "ingest-parquet" -d 'Load Parquet files into a data directory (offline) or a running server (--host)'
complete -c velo -n "__fish_velo_needs_command" -f -a "train-dict" -d 'Train a zstd dictionary per key family from the values in a data directory and report the gain'
complete -c velo -n "__fish_velo_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c velo -n "__fish_velo_using_subcommand serve" -l config -d 'Config file (Redis syntax: `name value` per line); flags override it' -r -F
complete -c velo -n "__fish_velo_using_subcommand serve" -l port -d 'TCP port [default: 7379]; 0 picks a free port (printed at startup)' -r
complete -c velo -n "__fish_velo_using_subcommand serve" -l bind -d 'Address to listen on [default: 127.0.0.1]' -r
complete -c velo -n "__fish_velo_using_subcommand serve" -l dir -d 'Data directory [default: ./velo-data]' -r
complete -c velo -n "__fish_velo_using_subcommand serve" -l slots -d 'Internal slots of a new data directory (power of two, 1..=1024) [default: 8]' -r
complete -c velo -n "__fish_velo_using_subcommand serve" -l fsync -d 'WAL durability: always, everysec or no [default: everysec]' -r
complete -c velo -n "__fish_velo_using_subcommand serve" -l page-cache -d 'Key-bucket page cache size, e.g. 64mb [default: 64mb]' -r
complete -c velo -n "__fish_velo_using_subcommand serve" -l value-cache -d 'Value cache size, e.g. 64mb [default: 64mb]' -r
complete -c velo -n "__fish_velo_using_subcommand serve" -l maxclients -d 'Maximum simultaneous clients [default: 10000]' -r
complete -c velo -n "__fish_velo_using_subcommand serve" -l databases -d 'Number of databases [default: 16]' -r
complete -c velo -n "__fish_velo_using_subcommand serve" -l log-level -d 'Log level: error, warn, info, debug or trace [default: info]' -r
complete -c velo -n "__fish_velo_using_subcommand serve" -l worker-threads -d 'Threads serving connections; 0 (the default) means one per CPU core' -r
complete -c velo -n "__fish_velo_using_subcommand serve" -l dbfilename -d 'File name of RDB snapshots (SAVE, BGSAVE) in the data directory [default: dump.rdb]. Redis 7.0 protects it from CONFIG SET, so it is set here or in the config file' -r
complete -c velo -n "__fish_velo_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c velo -n "__fish_velo_using_subcommand rdb-restore" -l dir -d 'Data directory to load into while no server runs on it (created if missing)' -r -F
complete -c velo -n "__fish_velo_using_subcommand rdb-restore" -l host -d 'Load into a running Redis or Velo server instead, with pipelined RESTORE commands' -r
complete -c velo -n "__fish_velo_using_subcommand rdb-restore" -l port -d 'Port of `--host`' -r
complete -c velo -n "__fish_velo_using_subcommand rdb-restore" -l password -d 'Password of `--host` (AUTH)' -r
complete -c velo -n "__fish_velo_using_subcommand rdb-restore" -l db-map -d 'Load source database SRC into database DST (repeatable); others keep their number' -r
complete -c velo -n "__fish_velo_using_subcommand rdb-restore" -l on-existing -d 'What to do when a key already exists: `fail` writes nothing at all if any does' -r -f -a "fail\t'Write nothing at all if any key of the files exists'
skip\t'Keep the existing key'
replace\t'Replace the existing key'"
complete -c velo -n "__fish_velo_using_subcommand rdb-restore" -l dry-run -d 'Read and check the files, write nothing'
complete -c velo -n "__fish_velo_using_subcommand rdb-restore" -l strict -d 'Fail on module values instead of skipping them'
complete -c velo -n "__fish_velo_using_subcommand rdb-restore" -l json -d 'Print the summary as JSON on standard output'
complete -c velo -n "__fish_velo_using_subcommand rdb-restore" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c velo -n "__fish_velo_using_subcommand rdb-dump" -l dir -d 'Data directory to read; if a running server holds it, that server sends the file of one instant (it must be reachable at the address in the directory\'s ADDRESS file)' -r -F
complete -c velo -n "__fish_velo_using_subcommand rdb-dump" -s o -l output -d 'Output file (`-` for standard output)' -r
complete -c velo -n "__fish_velo_using_subcommand rdb-dump" -l db -d 'Only this database (repeatable)' -r
complete -c velo -n "__fish_velo_using_subcommand rdb-dump" -l match -d 'Only keys matching this glob-style pattern' -r
complete -c velo -n "__fish_velo_using_subcommand rdb-dump" -l databases -d 'Number of databases of the directory' -r
complete -c velo -n "__fish_velo_using_subcommand rdb-dump" -l password -d 'Password of the running server holding the directory, if it has one (`requirepass`)' -r
complete -c velo -n "__fish_velo_using_subcommand rdb-dump" -l no-compression -d 'Do not LZF-compress strings (Redis\'s `rdbcompression no`)'
complete -c velo -n "__fish_velo_using_subcommand rdb-dump" -l json -d 'Print the summary as JSON (on standard error when the RDB goes to standard output)'
complete -c velo -n "__fish_velo_using_subcommand rdb-dump" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c velo -n "__fish_velo_using_subcommand inspect-bucket" -l dir -d 'The data directory (may be held by a running server; nothing is written)' -r -F
complete -c velo -n "__fish_velo_using_subcommand inspect-bucket" -l key -d 'Follow this key\'s path (bytes as given on the command line)' -r
complete -c velo -n "__fish_velo_using_subcommand inspect-bucket" -l db -d 'The key\'s database' -r
complete -c velo -n "__fish_velo_using_subcommand inspect-bucket" -l slot -d 'Show one bucket of this internal slot instead (with --bucket)' -r
complete -c velo -n "__fish_velo_using_subcommand inspect-bucket" -l bucket -d 'The bucket to show (with --slot)' -r
complete -c velo -n "__fish_velo_using_subcommand inspect-bucket" -l json -d 'Print one JSON document (shape: docs/tools.md)'
complete -c velo -n "__fish_velo_using_subcommand inspect-bucket" -l values -d 'Show values (escaped, first 256 bytes)'
complete -c velo -n "__fish_velo_using_subcommand inspect-bucket" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c velo -n "__fish_velo_using_subcommand inspect-segment" -l dir -d 'The data directory (may be held by a running server; nothing is written)' -r -F
complete -c velo -n "__fish_velo_using_subcommand inspect-segment" -l slot -d 'The internal slot' -r
complete -c velo -n "__fish_velo_using_subcommand inspect-segment" -l file -d 'A chunk file (id, or name `chunk-NNNNNNNN.dat`) or big-value file (`big-<id>.val`)' -r
complete -c velo -n "__fish_velo_using_subcommand inspect-segment" -l offset -d 'Only the segment starting at this byte offset of the chunk file' -r
complete -c velo -n "__fish_velo_using_subcommand inspect-segment" -l segment -d 'One segment as `FILE:OFFSET` (chunk file id and byte offset, as cells show their location)' -r
complete -c velo -n "__fish_velo_using_subcommand inspect-segment" -l json -d 'Print one JSON document (shape: docs/tools.md)'
complete -c velo -n "__fish_velo_using_subcommand inspect-segment" -l values -d 'Show values (escaped, first 256 bytes)'
complete -c velo -n "__fish_velo_using_subcommand inspect-segment" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c velo -n "__fish_velo_using_subcommand check" -l dir -d 'The data directory (may be held by a running server; nothing is written)' -r -F
complete -c velo -n "__fish_velo_using_subcommand check" -l slot -d 'Check only this internal slot' -r
complete -c velo -n "__fish_velo_using_subcommand check" -l nice -d 'Run at this nice value (0-19; the default yields the CPU to a server running beside it; 0 keeps the normal priority)' -r
complete -c velo -n "__fish_velo_using_subcommand check" -l json -d 'Print one JSON document (shape: docs/tools.md)'
complete -c velo -n "__fish_velo_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c velo -n "__fish_velo_using_subcommand bigkeys" -l dir -d 'Read this data directory (offline; may be held by a running server)' -r -F
complete -c velo -n "__fish_velo_using_subcommand bigkeys" -l host -d 'Ask this server instead (Velo or Redis), through SCAN, TYPE, MEMORY USAGE and length commands' -r
complete -c velo -n "__fish_velo_using_subcommand bigkeys" -l port -d 'The server\'s port' -r
complete -c velo -n "__fish_velo_using_subcommand bigkeys" -l password -d 'AUTH password (or the VELO_PASSWORD environment variable)' -r
complete -c velo -n "__fish_velo_using_subcommand bigkeys" -l user -d 'AUTH user name (with --password)' -r
complete -c velo -n "__fish_velo_using_subcommand bigkeys" -l db -d 'Only this database (offline default: all; online default: 0)' -r
complete -c velo -n "__fish_velo_using_subcommand bigkeys" -l top -d 'Keys to list per type and measure' -r
complete -c velo -n "__fish_velo_using_subcommand bigkeys" -l families -d 'Key families to list (largest stored bytes first)' -r
complete -c velo -n "__fish_velo_using_subcommand bigkeys" -l nice -d 'Offline: run at this nice value (0-19; the default yields the CPU to a server running beside it; 0 keeps the normal priority)' -r
complete -c velo -n "__fish_velo_using_subcommand bigkeys" -l json -d 'Print one JSON document (shape: docs/tools.md)'
complete -c velo -n "__fish_velo_using_subcommand bigkeys" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c velo -n "__fish_velo_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c velo -n "__fish_velo_using_subcommand generate" -l out -d 'Where to write `completions/` and `man/` (the repository root when blessing)' -r -F
complete -c velo -n "__fish_velo_using_subcommand generate" -s h -l help -d 'Print help'
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l dir -d 'Data directory to load into (offline: no server may hold it)' -r -F
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l host -d 'Load through a running Velo or Redis server instead of a directory' -r
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l port -d 'The server\'s port (with --host)' -r
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l password -d 'The server\'s password (with --host)' -r
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l db -d 'Database number' -r
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l key -d 'Key column (string, binary or integer)' -r
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l key-template -d 'Key built from several columns, e.g. \'user:{id}:{country}\'' -r
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l key-prefix -d 'Prepended to every key' -r
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l value -d 'Store this column as a string value' -r
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l columns -d 'Columns for --value-json / --value-hash, comma-separated' -r
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l ttl -d 'TTL in seconds for every key' -r
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l ttl-col -d 'Relative TTL from this integer column (unit: --ttl-unit) or duration column (its own unit); null: none' -r
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l expire-at-col -d 'Absolute expiry from this timestamp column, or epoch number column in --ttl-unit; null means none' -r
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l ttl-unit -d 'Unit of --ttl-col and of integer --expire-at-col values' -r -f -a "s\t'Seconds'
ms\t'Milliseconds'"
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l on-existing -d 'A key that exists before the load: fail the run, skip the row, or replace the key' -r -f -a "fail\t'Fail before writing anything'
skip\t'Leave the existing key'
replace\t'Overwrite it'"
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l on-duplicate -d 'A key repeated in the input: the last row wins, the first row wins, or every repeat is rejected' -r -f -a "last\t'The last row wins'
first\t'The first row wins'
error\t'Every repeat is a rejected row'"
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l max-errors -d 'Rejected rows tolerated; with more, nothing is written' -r
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l value-json -d 'Store the row (or --columns) as a JSON object'
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l value-hash -d 'Store a hash with one field per column (or per --columns); null fields are left out'
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l dry-run -d 'Read and validate everything, write nothing'
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l json -d 'Print the summary as JSON'
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -l quiet -d 'No progress and no summary table (errors still go to stderr)'
complete -c velo -n "__fish_velo_using_subcommand ingest-parquet" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c velo -n "__fish_velo_using_subcommand train-dict" -l dir -d 'The data directory to sample (with `--from-parquet`: where `--install` writes)' -r -F
complete -c velo -n "__fish_velo_using_subcommand train-dict" -l from-parquet -d 'Sample the values of one column of a Parquet file instead (before loading it), as the family given by `--family`' -r -F
complete -c velo -n "__fish_velo_using_subcommand train-dict" -l column -d 'The Parquet column holding the values (its cells as `velo ingest-parquet` stores them as text)' -r
complete -c velo -n "__fish_velo_using_subcommand train-dict" -l family -d 'Train only this key family (the key up to its last separator; `(default)` for keys without one)' -r
complete -c velo -n "__fish_velo_using_subcommand train-dict" -l samples -d 'Values sampled per family (the first found in scan order)' -r
complete -c velo -n "__fish_velo_using_subcommand train-dict" -l size -d 'Dictionary size in bytes' -r
complete -c velo -n "__fish_velo_using_subcommand train-dict" -l separators -d 'Bytes that end a family prefix (as the server\'s velo-dict-separators)' -r
complete -c velo -n "__fish_velo_using_subcommand train-dict" -l all -d 'Train every family with enough values'
complete -c velo -n "__fish_velo_using_subcommand train-dict" -l install -d 'Write each trained dictionary into the directory (which no server may hold) for new writes to use'
complete -c velo -n "__fish_velo_using_subcommand train-dict" -l json -d 'Print one JSON document (shape: docs/tools.md)'
complete -c velo -n "__fish_velo_using_subcommand train-dict" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c velo -n "__fish_velo_using_subcommand help; and not __fish_seen_subcommand_from serve rdb-restore rdb-dump inspect-bucket inspect-segment check bigkeys completions generate ingest-parquet train-dict help" -f -a "serve" -d 'Run the RESP server on a data directory'
complete -c velo -n "__fish_velo_using_subcommand help; and not __fish_seen_subcommand_from serve rdb-restore rdb-dump inspect-bucket inspect-segment check bigkeys completions generate ingest-parquet train-dict help" -f -a "rdb-restore" -d 'Load RDB files into a data directory (offline) or a running server (`--host`)'
complete -c velo -n "__fish_velo_using_subcommand help; and not __fish_seen_subcommand_from serve rdb-restore rdb-dump inspect-bucket inspect-segment check bigkeys completions generate ingest-parquet train-dict help" -f -a "rdb-dump" -d 'Write the keys of a data directory as an RDB file (version 10, as Redis 7.0 writes)'
complete -c velo -n "__fish_velo_using_subcommand help; and not __fish_seen_subcommand_from serve rdb-restore rdb-dump inspect-bucket inspect-segment check bigkeys completions generate ingest-parquet train-dict help" -f -a "inspect-bucket" -d 'Show a key\'s path through the data files (slot, bucket, pages, cell, record, WAL), or one bucket'
complete -c velo -n "__fish_velo_using_subcommand help; and not __fish_seen_subcommand_from serve rdb-restore rdb-dump inspect-bucket inspect-segment check bigkeys completions generate ingest-parquet train-dict help" -f -a "inspect-segment" -d 'Show a chunk file\'s segments and records, live or garbage, with its live share'
complete -c velo -n "__fish_velo_using_subcommand help; and not __fish_seen_subcommand_from serve rdb-restore rdb-dump inspect-bucket inspect-segment check bigkeys completions generate ingest-parquet train-dict help" -f -a "check" -d 'Verify every file of a data directory and the references between them'
complete -c velo -n "__fish_velo_using_subcommand help; and not __fish_seen_subcommand_from serve rdb-restore rdb-dump inspect-bucket inspect-segment check bigkeys completions generate ingest-parquet train-dict help" -f -a "bigkeys" -d 'The largest keys per type and the sizes of key families, from the files or from a server'
complete -c velo -n "__fish_velo_using_subcommand help; and not __fish_seen_subcommand_from serve rdb-restore rdb-dump inspect-bucket inspect-segment check bigkeys completions generate ingest-parquet train-dict help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c velo -n "__fish_velo_using_subcommand help; and not __fish_seen_subcommand_from serve rdb-restore rdb-dump inspect-bucket inspect-segment check bigkeys completions generate ingest-parquet train-dict help" -f -a "generate" -d 'Write every completion script and man page under DIR/completions and DIR/man'
complete -c velo -n "__fish_velo_using_subcommand help; and not __fish_seen_subcommand_from serve rdb-restore rdb-dump inspect-bucket inspect-segment check bigkeys completions generate ingest-parquet train-dict help" -f -a "ingest-parquet" -d 'Load Parquet files into a data directory (offline) or a running server (--host)'
complete -c velo -n "__fish_velo_using_subcommand help; and not __fish_seen_subcommand_from serve rdb-restore rdb-dump inspect-bucket inspect-segment check bigkeys completions generate ingest-parquet train-dict help" -f -a "train-dict" -d 'Train a zstd dictionary per key family from the values in a data directory and report the gain'
complete -c velo -n "__fish_velo_using_subcommand help; and not __fish_seen_subcommand_from serve rdb-restore rdb-dump inspect-bucket inspect-segment check bigkeys completions generate ingest-parquet train-dict help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
