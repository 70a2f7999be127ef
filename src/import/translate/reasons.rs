//! Why an nginx directive has no rampart equivalent, as the import report
//! says it.

/// Why a directive has no rampart equivalent.
pub(super) fn reason(name: &str) -> Option<&'static str> {
    Some(match name {
        "ssl_ciphers" | "ssl_prefer_server_ciphers" | "ssl_ecdh_curve" | "ssl_dhparam" | "ssl_conf_command" => {
            "rustls offers only modern AEAD cipher suites and chooses among them itself"
        }
        "ssl_session_cache" | "ssl_session_timeout" | "ssl_session_tickets" | "ssl_session_ticket_key" => {
            "rampart keeps a session cache and rotates ticket keys itself"
        }
        "ssl_stapling" | "ssl_stapling_verify" | "ssl_trusted_certificate" | "resolver_timeout" => {
            "no OCSP stapling (Let's Encrypt ended its OCSP service in 2025; browsers do not rely on it)"
        }
        "resolver" => "rampart looks names up through the system resolver (/etc/hosts, resolv.conf) every resolve_interval (30 s, or nginx's valid=)",
        "worker_connections" | "worker_rlimit_nofile" | "use" | "multi_accept" | "accept_mutex" | "worker_cpu_affinity" | "worker_priority" => {
            "rampart has no per-worker connection cap; raise the open-file limit (LimitNOFILE) instead"
        }
        "user" => "run rampart as an unprivileged user (systemd User=, Docker USER)",
        "pid" => "set global.pid_file if something needs a pid file",
        "log_format" => "the access log is one JSON line per request with fixed fields",
        "error_log" => "diagnostics go to stderr ([log] level and format)",
        "sendfile" | "tcp_nopush" | "tcp_nodelay" | "aio" | "directio" | "output_buffers" | "postpone_output" => {
            "socket and file I/O tuning is rampart's own"
        }
        "default_type" | "types" | "types_hash_max_size" | "types_hash_bucket_size" | "include" => {
            "rampart has a built-in MIME type table"
        }
        "server_names_hash_bucket_size" | "server_names_hash_max_size" | "variables_hash_max_size" | "map_hash_bucket_size" => {
            "no hash tables to size"
        }
        "client_body_buffer_size" | "client_header_buffer_size" | "large_client_header_buffers" | "proxy_buffers"
        | "proxy_buffer_size" | "proxy_busy_buffers_size" | "proxy_temp_file_write_size" | "proxy_max_temp_file_size"
        | "proxy_temp_path" | "client_body_temp_path" => {
            "buffer sizes are rampart's own: it buffers up to the server's buffer_size (1M) per direction (buffering = true) and accepts request heads up to 64 KiB"
        }
        "keepalive_requests" | "keepalive_time" => "no per-connection request cap",
        "send_timeout" => "the response write timeout is not configurable per server",
        "gzip_comp_level" => "rampart picks the level per algorithm (gzip 3, brotli 4, zstd 3: measured best ratio for the CPU)",
        "gzip_proxied" | "gzip_http_version" | "gzip_buffers" | "gzip_disable" | "gzip_static" => {
            "rampart compresses every eligible response and serves precompressed .gz/.br siblings of static files by itself"
        }
        "if" | "set" | "map" | "rewrite" | "geo" | "split_clients" | "break" => {
            "no scripting: express the condition as routes"
        }
        "limit_rate" | "limit_rate_after" => "no bandwidth limits",
        "limit_conn_zone" => "rampart keys conn_limits by client_ip, host or header:<Name>",
        "limit_conn" => "its zone was not imported",
        "limit_req_log_level" | "limit_req_dry_run" => "rejections are counted in rampart_rate_limited_total",
        "satisfy" => "rampart checks allow/deny and then auth: both must admit (satisfy all)",
        "auth_request_set" => "only $upstream_http_<name> values are copied (as copy_headers)",
        "allow" | "deny" => "an access list in an order rampart cannot keep (it checks deny first)",
        n if n.starts_with("proxy_cache") || n.starts_with("fastcgi_") || n.starts_with("uwsgi_") => {
            "no response cache and no FastCGI/uwsgi: rampart proxies HTTP"
        }
        "proxy_next_upstream" | "proxy_next_upstream_tries" | "proxy_next_upstream_timeout" => {
            "set upstreams.<name>.tries; retries follow rampart's rules (connect errors always, idempotent requests otherwise)"
        }
        "proxy_intercept_errors" | "error_page" => "rampart answers its own errors (text, or JSON when the client asks for it)",
        "charset" | "source_charset" | "charset_types" => "no charset conversion",
        "autoindex" => "no directory listings",
        "http2_max_concurrent_streams" | "http2_push" | "http2_push_preload" => "HTTP/2 settings are rampart's own",
        "ssi" | "sub_filter" | "sub_filter_once" | "sub_filter_types" => "no response rewriting",
        "proxy_hide_header" | "proxy_pass_header" | "proxy_ignore_headers" => "upstream headers pass through as they are",
        "proxy_ssl_verify" | "proxy_ssl_trusted_certificate" | "proxy_ssl_name" | "proxy_ssl_server_name" => {
            "set tls_verify / tls_ca / tls_server_name on the upstream"
        }
        "limit_except" => "no per-method access rules",
        "stream" | "mail" => "rampart proxies HTTP only",
        _ => return None,
    })
}
