//! The server rows of `show stat <backend> 4 -1` (CSV), read by column
//! name from HAProxy's own header line so a column added in another
//! version does not shift what we read.

/// What the swap needs to know about one server of the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStat {
    /// `svname`.
    pub name: String,
    /// `status`: `UP`, `DOWN`, `MAINT`, `DRAIN`, `NOLB`, `UP 1/2` (going
    /// down), `DOWN 1/2` (going up), `no check`.
    pub status: String,
    /// `scur`: sessions currently attached to the server.
    pub sessions: u64,
    /// `qcur`: requests queued for the server.
    pub queued: u64,
    /// `weight`: the effective weight (0 while draining or in maintenance).
    pub weight: u64,
    /// `check_status`: `L7OK`, `L4CON`, `INI`, ... (empty when checks are off).
    pub check_status: String,
    /// `check_desc` (`Layer7 check passed`), for error messages.
    pub check_desc: String,
    /// `last_chk`: what the last check saw (`HTTP status check returned code <503>`).
    pub last_check: String,
    /// `addr` (`127.0.0.1:28082`).
    pub addr: String,
}

impl ServerStat {
    /// Up, fully (not `UP 1/2`), and its last health check passed: the only
    /// state in which the swap lets a server take traffic. A server HAProxy
    /// put `UP` before any check ran (`INI`) does not count.
    pub fn is_healthy(&self) -> bool {
        self.status == "UP" && matches!(self.check_status.as_str(), "L4OK" | "L6OK" | "L7OK")
    }

    /// Sessions and queued requests still attached.
    pub fn in_flight(&self) -> u64 {
        self.sessions + self.queued
    }

    /// `UP, check L4CON (Connection refused)`, for messages.
    pub fn describe(&self) -> String {
        let mut s = format!("status {}", self.status);
        if !self.check_status.is_empty() {
            s.push_str(&format!(", check {}", self.check_status));
            let detail = if self.last_check.is_empty() {
                &self.check_desc
            } else {
                &self.last_check
            };
            if !detail.is_empty() {
                s.push_str(&format!(" ({detail})"));
            }
        }
        s.push_str(&format!(", {} sessions", self.sessions));
        if self.queued > 0 {
            s.push_str(&format!(", {} queued", self.queued));
        }
        s
    }
}

/// Reads the server rows of a `show stat` answer (FRONTEND and BACKEND rows
/// are skipped). Fails when the header or a needed column is missing.
pub fn parse_show_stat(text: &str) -> Result<Vec<ServerStat>, String> {
    let (columns, lines) = header_and_rows(text)?;
    let col = |name: &str| {
        columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| format!("column `{name}` missing from the header"))
    };
    let (svname, status, scur, qcur, weight, check_status, check_desc, last_chk, addr) = (
        col("svname")?,
        col("status")?,
        col("scur")?,
        col("qcur")?,
        col("weight")?,
        col("check_status")?,
        col("check_desc")?,
        col("last_chk")?,
        col("addr")?,
    );
    let mut servers = Vec::new();
    for line in lines {
        let fields = split_csv(line);
        let get = |i: usize| fields.get(i).map(String::as_str).unwrap_or("");
        let name = get(svname);
        if name.is_empty() || name == "FRONTEND" || name == "BACKEND" {
            continue;
        }
        let number = |i: usize, what: &str| -> Result<u64, String> {
            let v = get(i);
            if v.is_empty() {
                return Ok(0);
            }
            v.parse()
                .map_err(|_| format!("server {name}: {what} is {v:?}, not a number"))
        };
        servers.push(ServerStat {
            name: name.to_string(),
            status: get(status).to_string(),
            sessions: number(scur, "scur")?,
            queued: number(qcur, "qcur")?,
            weight: number(weight, "weight")?,
            check_status: get(check_status).trim_start_matches('*').trim().to_string(),
            check_desc: get(check_desc).to_string(),
            last_check: get(last_chk).to_string(),
            addr: get(addr).to_string(),
        });
    }
    Ok(servers)
}

/// The `algo` of the BACKEND row of a `show stat <backend> 2 -1` answer
/// (`roundrobin`, `static-rr`, ...); `None` if HAProxy does not report it.
pub fn parse_backend_algo(text: &str) -> Result<Option<String>, String> {
    let (columns, lines) = header_and_rows(text)?;
    let (Some(svname), Some(algo)) = (
        columns.iter().position(|c| c == "svname"),
        columns.iter().position(|c| c == "algo"),
    ) else {
        return Ok(None);
    };
    for line in lines {
        let fields = split_csv(line);
        if fields.get(svname).map(String::as_str) == Some("BACKEND") {
            return Ok(fields.get(algo).filter(|a| !a.is_empty()).cloned());
        }
    }
    Ok(None)
}

/// The column names of a `show stat` CSV answer and its data lines.
fn header_and_rows(text: &str) -> Result<(Vec<String>, impl Iterator<Item = &str>), String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .next()
        .and_then(|l| l.strip_prefix("# "))
        .ok_or_else(|| {
            format!(
                "expected a `# pxname,svname,...` header, got {:?}",
                first_line(text)
            )
        })?;
    Ok((split_csv(header), lines))
}

fn first_line(text: &str) -> &str {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
}

/// Splits one CSV line. HAProxy quotes fields that hold a comma or a quote
/// (`"a,b"`, with `""` for a quote inside).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' if quoted => quoted = false,
            '"' if field.is_empty() => quoted = true,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from HAProxy 2.6.12 (`show stat app 4 -1`), trimmed to the
    // first columns plus the ones we read, in HAProxy's order.
    const HEADER: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo";
    const BLUE_MAINT: &str = "app,blue,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1,1,0,0,1,27,27,,1,3,1,,0,,2,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,127.0.0.1:28081,,http,";
    const GREEN_UP: &str = "app,green,0,0,3,5,,9,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,29,0,,1,3,2,,0,,2,0,,0,L7OK,200,0,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,Layer7 check passed,,1,2,2,,,,127.0.0.1:28082,,http,";

    fn answer(rows: &[&str]) -> String {
        let mut s = format!("{HEADER}\n");
        for r in rows {
            s.push_str(r);
            s.push('\n');
        }
        s.push_str("app,BACKEND,0,0,3,5,999,9,0,0,0,0,,0,0,0,0,UP,1,1,0\n");
        s
    }

    #[test]
    fn reads_server_rows_by_column_name() {
        let servers = parse_show_stat(&answer(&[BLUE_MAINT, GREEN_UP])).unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].name, "blue");
        assert_eq!(servers[0].status, "MAINT");
        assert!(!servers[0].is_healthy());
        let green = &servers[1];
        assert_eq!(green.status, "UP");
        assert_eq!(green.sessions, 3);
        assert_eq!(green.weight, 1);
        assert_eq!(green.check_status, "L7OK");
        assert_eq!(green.check_desc, "Layer7 check passed");
        assert_eq!(green.addr, "127.0.0.1:28082");
        assert!(green.is_healthy());
    }

    #[test]
    fn up_before_any_check_is_not_healthy() {
        let ini = GREEN_UP.replace(",UP,", ",UP 1/2,").replace("L7OK", "INI");
        let s = &parse_show_stat(&answer(&[&ini])).unwrap()[0];
        assert!(!s.is_healthy());
        let ini_but_up = GREEN_UP.replace("L7OK", "INI");
        assert!(!parse_show_stat(&answer(&[&ini_but_up])).unwrap()[0].is_healthy());
        // The `*` HAProxy puts before a check in progress is dropped.
        let running = GREEN_UP.replace("L7OK", "* L7OK");
        assert!(parse_show_stat(&answer(&[&running])).unwrap()[0].is_healthy());
    }

    #[test]
    fn quoted_fields_with_commas_do_not_shift_columns() {
        let row = GREEN_UP.replace(
            ",,,,,-1,,,0,0,0,0,,,,Layer7",
            ",,,,,-1,\"HTTP status check returned code <3C>503<3E>, body \"\"x\"\"\",,0,0,0,0,,,,Layer7",
        );
        let s = &parse_show_stat(&answer(&[&row])).unwrap()[0];
        assert_eq!(
            s.last_check,
            "HTTP status check returned code <3C>503<3E>, body \"x\""
        );
        assert_eq!(s.check_desc, "Layer7 check passed");
        assert_eq!(s.addr, "127.0.0.1:28082");
    }

    #[test]
    fn errors_say_what_was_wrong() {
        let err = parse_show_stat("No such proxy.").unwrap_err();
        assert!(err.contains("No such proxy."), "{err}");
        let err = parse_show_stat("# pxname,svname,status\napp,blue,UP\n").unwrap_err();
        assert!(err.contains("`scur`"), "{err}");
        let bad = answer(&[&GREEN_UP.replace("app,green,0,0,3,", "app,green,0,0,x,")]);
        let err = parse_show_stat(&bad).unwrap_err();
        assert!(err.contains("scur") && err.contains("green"), "{err}");
    }

    #[test]
    fn describe_names_the_failing_check() {
        let row = GREEN_UP
            .replace(",UP,", ",DOWN,")
            .replace("L7OK", "L4CON")
            .replace("Layer7 check passed", "Layer4 connection problem");
        let s = &parse_show_stat(&answer(&[&row])).unwrap()[0];
        assert_eq!(
            s.describe(),
            "status DOWN, check L4CON (Layer4 connection problem), 3 sessions"
        );
    }

    #[test]
    fn backend_algo_is_read_from_the_backend_row() {
        let text = format!("{HEADER}\napp,BACKEND,0,0,3,5,999,9,0,0,0,0,,0,0,0,0,UP,1,1,0,,0,1,0,,1,3,0,,0,,1,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,0,0,0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,http,roundrobin\n");
        assert_eq!(
            parse_backend_algo(&text).unwrap().as_deref(),
            Some("roundrobin")
        );
        assert_eq!(parse_backend_algo(&answer(&[GREEN_UP])).unwrap(), None);
        assert!(parse_backend_algo("[3]: No such proxy.").is_err());
    }

    #[test]
    fn csv_split() {
        assert_eq!(split_csv("a,,b"), vec!["a", "", "b"]);
        assert_eq!(split_csv("\"a,b\",c"), vec!["a,b", "c"]);
        assert_eq!(split_csv(""), vec![""]);
    }
}
