//! The standalone token source (`static_tokens_file`): one token per line,
//! `TOKEN PROJECT_ID USER_ID ROLE[,ROLE...]`, separated by whitespace; `#` starts a comment.
//! The file is read at start-up and again on SIGHUP; a reload that fails keeps the old tokens.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use super::{Identity, SetupError};

/// Tokens read from a file.
#[derive(Debug)]
pub struct TokensFile {
    path: PathBuf,
    tokens: RwLock<HashMap<String, Identity>>,
}

impl TokensFile {
    /// Reads the file at `path`.
    pub fn open(path: &Path) -> Result<TokensFile, SetupError> {
        let tokens = read(path)?;
        Ok(TokensFile {
            path: path.to_path_buf(),
            tokens: RwLock::new(tokens),
        })
    }

    /// Reads the file again; on failure the tokens read before stay in force.
    pub fn reload(&self) -> Result<usize, SetupError> {
        let tokens = read(&self.path)?;
        let count = tokens.len();
        match self.tokens.write() {
            Ok(mut guard) => *guard = tokens,
            Err(poisoned) => *poisoned.into_inner() = tokens,
        }
        Ok(count)
    }

    /// Who holds `token`, if it is in the file.
    pub fn lookup(&self, token: &str) -> Option<Identity> {
        let guard = match self.tokens.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard.get(token).cloned()
    }
}

fn read(path: &Path) -> Result<HashMap<String, Identity>, SetupError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SetupError(format!("cannot read tokens file {}: {e}", path.display())))?;
    parse(&text).map_err(|e| SetupError(format!("{}: {e}", path.display())))
}

/// Parses the tokens file format.
pub fn parse(text: &str) -> Result<HashMap<String, Identity>, String> {
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [token, project, user, roles] = fields[..] else {
            return Err(format!(
                "line {}: expected TOKEN PROJECT_ID USER_ID ROLES, found {} fields",
                n + 1,
                fields.len()
            ));
        };
        let roles = roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect();
        let identity = Identity {
            project_id: project.to_string(),
            user_id: user.to_string(),
            roles,
            expires_at: None,
        };
        if out.insert(token.to_string(), identity).is_some() {
            return Err(format!("line {}: the token appears twice", n + 1));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_give_identities_and_bad_lines_are_named() {
        let tokens = parse("# tokens\nt1 p1 u1 admin,member\n\n t2 p2 u2 member # x\n").unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens["t1"].roles, ["admin", "member"]);
        assert_eq!(tokens["t2"].project_id, "p2");
        assert!(parse("t1 p1 u1\n").unwrap_err().contains("line 1"));
        assert!(parse("t p u r\nt p u r\n").unwrap_err().contains("twice"));
    }

    #[test]
    fn reload_replaces_tokens_and_a_bad_file_keeps_the_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "a p u member\n").unwrap();
        let file = TokensFile::open(&path).unwrap();
        assert!(file.lookup("a").is_some());
        std::fs::write(&path, "b p u member\n").unwrap();
        assert_eq!(file.reload().unwrap(), 1);
        assert!(file.lookup("a").is_none() && file.lookup("b").is_some());
        std::fs::write(&path, "broken\n").unwrap();
        assert!(file.reload().is_err());
        assert!(file.lookup("b").is_some());
    }
}
