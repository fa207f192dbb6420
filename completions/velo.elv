
use builtin;
use str;

set edit:completion:arg-completer[velo] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'velo'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'velo'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Run the RESP server on a data directory'
            cand rdb-restore 'Load RDB files into a data directory (offline) or a running server (`--host`)'
            cand rdb-dump 'Write the keys of a data directory as an RDB file (version 10, as Redis 7.0 writes)'
            cand inspect-bucket 'Show a key''s path through the data files (slot, bucket, pages, cell, record, WAL), or one bucket'
            cand inspect-segment 'Show a chunk file''s segments and records, live or garbage, with its live share'
            cand check 'Verify every file of a data directory and the references between them'
            cand bigkeys 'The largest keys per type and the sizes of key families, from the files or from a server'
            cand completions 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
            cand generate 'Write every completion script and man page under DIR/completions and DIR/man'
            cand ingest-parquet 'Load Parquet files into a data directory (offline) or a running server (--host)'
            cand train-dict 'Train a zstd dictionary per key family from the values in a data directory and report the gain'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'velo;serve'= {
            cand --config 'Config file (Redis syntax: `name value` per line); flags override it'
            cand --port 'TCP port [default: 7379]; 0 picks a free port (printed at startup)'
            cand --bind 'Address to listen on [default: 127.0.0.1]'
            cand --dir 'Data directory [default: ./velo-data]'
            cand --slots 'Internal slots of a new data directory (power of two, 1..=1024) [default: 8]'
            cand --fsync 'WAL durability: always, everysec or no [default: everysec]'
            cand --page-cache 'Key-bucket page cache size, e.g. 64mb [default: 64mb]'
            cand --value-cache 'Value cache size, e.g. 64mb [default: 64mb]'
            cand --maxclients 'Maximum simultaneous clients [default: 10000]'
            cand --databases 'Number of databases [default: 16]'
            cand --log-level 'Log level: error, warn, info, debug or trace [default: info]'
            cand --worker-threads 'Threads serving connections; 0 (the default) means one per CPU core'
            cand --dbfilename 'File name of RDB snapshots (SAVE, BGSAVE) in the data directory [default: dump.rdb]. Redis 7.0 protects it from CONFIG SET, so it is set here or in the config file'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'velo;rdb-restore'= {
            cand --dir 'Data directory to load into while no server runs on it (created if missing)'
            cand --host 'Load into a running Redis or Velo server instead, with pipelined RESTORE commands'
            cand --port 'Port of `--host`'
            cand --password 'Password of `--host` (AUTH)'
            cand --db-map 'Load source database SRC into database DST (repeatable); others keep their number'
            cand --on-existing 'What to do when a key already exists: `fail` writes nothing at all if any does'
            cand --dry-run 'Read and check the files, write nothing'
            cand --strict 'Fail on module values instead of skipping them'
            cand --json 'Print the summary as JSON on standard output'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'velo;rdb-dump'= {
            cand --dir 'Data directory to read; if a running server holds it, that server sends the file of one instant (it must be reachable at the address in the directory''s ADDRESS file)'
            cand -o 'Output file (`-` for standard output)'
            cand --output 'Output file (`-` for standard output)'
            cand --db 'Only this database (repeatable)'
            cand --match 'Only keys matching this glob-style pattern'
            cand --databases 'Number of databases of the directory'
            cand --password 'Password of the running server holding the directory, if it has one (`requirepass`)'
            cand --no-compression 'Do not LZF-compress strings (Redis''s `rdbcompression no`)'
            cand --json 'Print the summary as JSON (on standard error when the RDB goes to standard output)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'velo;inspect-bucket'= {
            cand --dir 'The data directory (may be held by a running server; nothing is written)'
            cand --key 'Follow this key''s path (bytes as given on the command line)'
            cand --db 'The key''s database'
            cand --slot 'Show one bucket of this internal slot instead (with --bucket)'
            cand --bucket 'The bucket to show (with --slot)'
            cand --json 'Print one JSON document (shape: docs/tools.md)'
            cand --values 'Show values (escaped, first 256 bytes)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'velo;inspect-segment'= {
            cand --dir 'The data directory (may be held by a running server; nothing is written)'
            cand --slot 'The internal slot'
            cand --file 'A chunk file (id, or name `chunk-NNNNNNNN.dat`) or big-value file (`big-<id>.val`)'
            cand --offset 'Only the segment starting at this byte offset of the chunk file'
            cand --segment 'One segment as `FILE:OFFSET` (chunk file id and byte offset, as cells show their location)'
            cand --json 'Print one JSON document (shape: docs/tools.md)'
            cand --values 'Show values (escaped, first 256 bytes)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'velo;check'= {
            cand --dir 'The data directory (may be held by a running server; nothing is written)'
            cand --slot 'Check only this internal slot'
            cand --nice 'Run at this nice value (0-19; the default yields the CPU to a server running beside it; 0 keeps the normal priority)'
            cand --json 'Print one JSON document (shape: docs/tools.md)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'velo;bigkeys'= {
            cand --dir 'Read this data directory (offline; may be held by a running server)'
            cand --host 'Ask this server instead (Velo or Redis), through SCAN, TYPE, MEMORY USAGE and length commands'
            cand --port 'The server''s port'
            cand --password 'AUTH password (or the VELO_PASSWORD environment variable)'
            cand --user 'AUTH user name (with --password)'
            cand --db 'Only this database (offline default: all; online default: 0)'
            cand --top 'Keys to list per type and measure'
            cand --families 'Key families to list (largest stored bytes first)'
            cand --nice 'Offline: run at this nice value (0-19; the default yields the CPU to a server running beside it; 0 keeps the normal priority)'
            cand --json 'Print one JSON document (shape: docs/tools.md)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'velo;completions'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'velo;generate'= {
            cand --out 'Where to write `completions/` and `man/` (the repository root when blessing)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'velo;ingest-parquet'= {
            cand --dir 'Data directory to load into (offline: no server may hold it)'
            cand --host 'Load through a running Velo or Redis server instead of a directory'
            cand --port 'The server''s port (with --host)'
            cand --password 'The server''s password (with --host)'
            cand --db 'Database number'
            cand --key 'Key column (string, binary or integer)'
            cand --key-template 'Key built from several columns, e.g. ''user:{id}:{country}'''
            cand --key-prefix 'Prepended to every key'
            cand --value 'Store this column as a string value'
            cand --columns 'Columns for --value-json / --value-hash, comma-separated'
            cand --ttl 'TTL in seconds for every key'
            cand --ttl-col 'Relative TTL from this integer column (unit: --ttl-unit) or duration column (its own unit); null: none'
            cand --expire-at-col 'Absolute expiry from this timestamp column, or epoch number column in --ttl-unit; null means none'
            cand --ttl-unit 'Unit of --ttl-col and of integer --expire-at-col values'
            cand --on-existing 'A key that exists before the load: fail the run, skip the row, or replace the key'
            cand --on-duplicate 'A key repeated in the input: the last row wins, the first row wins, or every repeat is rejected'
            cand --max-errors 'Rejected rows tolerated; with more, nothing is written'
            cand --value-json 'Store the row (or --columns) as a JSON object'
            cand --value-hash 'Store a hash with one field per column (or per --columns); null fields are left out'
            cand --dry-run 'Read and validate everything, write nothing'
            cand --json 'Print the summary as JSON'
            cand --quiet 'No progress and no summary table (errors still go to stderr)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'velo;train-dict'= {
            cand --dir 'The data directory to sample (with `--from-parquet`: where `--install` writes)'
            cand --from-parquet 'Sample the values of one column of a Parquet file instead (before loading it), as the family given by `--family`'
            cand --column 'The Parquet column holding the values (its cells as `velo ingest-parquet` stores them as text)'
            cand --family 'Train only this key family (the key up to its last separator; `(default)` for keys without one)'
            cand --samples 'Values sampled per family (the first found in scan order)'
            cand --size 'Dictionary size in bytes'
            cand --separators 'Bytes that end a family prefix (as the server''s velo-dict-separators)'
            cand --all 'Train every family with enough values'
            cand --install 'Write each trained dictionary into the directory (which no server may hold) for new writes to use'
            cand --json 'Print one JSON document (shape: docs/tools.md)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'velo;help'= {
            cand serve 'Run the RESP server on a data directory'
            cand rdb-restore 'Load RDB files into a data directory (offline) or a running server (`--host`)'
            cand rdb-dump 'Write the keys of a data directory as an RDB file (version 10, as Redis 7.0 writes)'
            cand inspect-bucket 'Show a key''s path through the data files (slot, bucket, pages, cell, record, WAL), or one bucket'
            cand inspect-segment 'Show a chunk file''s segments and records, live or garbage, with its live share'
            cand check 'Verify every file of a data directory and the references between them'
            cand bigkeys 'The largest keys per type and the sizes of key families, from the files or from a server'
            cand completions 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
            cand generate 'Write every completion script and man page under DIR/completions and DIR/man'
            cand ingest-parquet 'Load Parquet files into a data directory (offline) or a running server (--host)'
            cand train-dict 'Train a zstd dictionary per key family from the values in a data directory and report the gain'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'velo;help;serve'= {
        }
        &'velo;help;rdb-restore'= {
        }
        &'velo;help;rdb-dump'= {
        }
        &'velo;help;inspect-bucket'= {
        }
        &'velo;help;inspect-segment'= {
        }
        &'velo;help;check'= {
        }
        &'velo;help;bigkeys'= {
        }
        &'velo;help;completions'= {
        }
        &'velo;help;generate'= {
        }
        &'velo;help;ingest-parquet'= {
        }
        &'velo;help;train-dict'= {
        }
        &'velo;help;help'= {
        }
    ]
    $completions[$command]
}
