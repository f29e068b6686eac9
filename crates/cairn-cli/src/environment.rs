//! Finding an environment on disk: `-d DIR`, `$CAIRN_ENV`, the current
//! directory and its parents, or (inside an image) `/opt/cairn/env`; and the
//! exclusive lock that every command which writes the environment holds
//! around its read–modify–write.

use crate::cli::DirArg;
use miette::{IntoDiagnostic, Result, miette};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// `--no-wait`: fail instead of waiting for another writer.
static NO_WAIT: AtomicBool = AtomicBool::new(false);

/// Records the global `--no-wait` choice for [`Environment::lock_for_write`].
pub fn set_no_wait(no_wait: bool) {
    NO_WAIT.store(no_wait, Ordering::Relaxed);
}

/// Where cairn keeps an environment inside images it builds.
pub const IMAGE_ENV_DIR: &str = "/opt/cairn/env";

/// An environment's files.
#[derive(Debug, Clone)]
pub struct Environment {
    /// The directory that holds `.cairn/` (the project directory).
    pub root: PathBuf,
    /// `.cairn/env/`: manifest and lock.
    pub env_dir: PathBuf,
}

impl Environment {
    /// The environment rooted at `root` (which may not exist yet).
    pub fn at(root: impl Into<PathBuf>) -> Environment {
        let root = root.into();
        let env_dir = root.join(".cairn").join("env");
        Environment { root, env_dir }
    }

    /// `manifest.toml`.
    pub fn manifest_path(&self) -> PathBuf {
        self.env_dir.join("manifest.toml")
    }

    /// `manifest.lock`.
    pub fn lock_path(&self) -> PathBuf {
        self.env_dir.join("manifest.lock")
    }

    /// `.cairn/run/`: service state and logs (gitignored). Inside an image,
    /// where the entrypoint (PID 1) supervises: `/run/cairn`.
    pub fn run_dir(&self) -> PathBuf {
        if self.env_dir == Path::new(IMAGE_ENV_DIR) {
            return PathBuf::from(cairn_runtime::CONTAINER_RUN_DIR);
        }
        self.root.join(".cairn").join("run")
    }

    /// `.cairn/lock`: held exclusively by a command while it reads, changes
    /// and writes the manifest, the lock or the run state.
    /// The write lock for changing the services' run state, on the host only:
    /// inside an image the PID-1 supervisor serialises requests itself, and
    /// `/opt/cairn` is not the image user's to create a lock in.
    pub fn lock_run_state(&self) -> Result<Option<cairn_store::FileLock>> {
        if self.env_dir == Path::new(IMAGE_ENV_DIR) {
            return Ok(None);
        }
        self.lock_for_write().map(Some)
    }

    pub fn write_lock_path(&self) -> PathBuf {
        self.env_dir.parent().unwrap_or(&self.env_dir).join("lock")
    }

    /// Takes the environment's write lock. Two writers at once would each
    /// read the same manifest and the second rename would drop the first's
    /// change (a lost update), so the second waits, saying so on stderr, or
    /// fails under `--no-wait`. Callers read the manifest and lock *after*
    /// this returns.
    pub fn lock_for_write(&self) -> Result<cairn_store::FileLock> {
        let path = self.write_lock_path();
        let policy = if NO_WAIT.load(Ordering::Relaxed) {
            cairn_store::WaitPolicy::NoWait
        } else {
            cairn_store::WaitPolicy::Wait
        };
        cairn_store::lock_exclusive(&path, policy, || {
            crate::output::status(format!(
                "waiting for another cairn command to finish changing {} (lock {})",
                self.root.display(),
                path.display()
            ));
        })
        .map_err(|e| match e {
            cairn_store::StoreError::Busy { path } => miette!(
                help = "wait for the other command to finish, or run without --no-wait to queue behind it",
                "another cairn command is changing the environment at {} (lock {})",
                self.root.display(),
                path.display()
            ),
            other => miette::Report::from_err(other),
        })
    }

    /// Whether a manifest exists.
    pub fn exists(&self) -> bool {
        self.manifest_path().is_file()
    }

    /// Finds the environment for a command, or explains how to create one.
    pub fn find(arg: &DirArg) -> Result<Environment> {
        if let Some(dir) = &arg.dir {
            return existing(Environment::at(absolute(dir)?));
        }
        if let Some(dir) = std::env::var_os("CAIRN_ENV").filter(|d| !d.is_empty()) {
            return existing(Environment::at(absolute(Path::new(&dir))?));
        }
        // Inside a cairn image, the environment the image carries wins over
        // a `.cairn/` in a host directory mounted at the working directory
        // (`docker run -v "$PWD:/app" -w /app`): that one is the host's.
        let image = Path::new(IMAGE_ENV_DIR);
        if image.join(cairn_runtime::ACTIVATION_FILE).is_file()
            && image.join("manifest.toml").is_file()
        {
            return Ok(Environment {
                root: PathBuf::from("/"),
                env_dir: image.to_path_buf(),
            });
        }
        let cwd = std::env::current_dir().into_diagnostic()?;
        for dir in cwd.ancestors() {
            let env = Environment::at(dir);
            if env.exists() {
                return Ok(env);
            }
        }
        Err(miette!(
            help = "run `cairn init` here, or pass `-d DIR` / set CAIRN_ENV",
            "no cairn environment found in {} or its parents",
            cwd.display()
        ))
    }

    /// A name for the environment: the directory's name.
    pub fn default_name(&self) -> String {
        self.root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "cairn".to_string())
    }
}

fn existing(env: Environment) -> Result<Environment> {
    if env.exists() {
        Ok(env)
    } else {
        Err(miette!(
            help = format!("create one with `cairn init -d {}`", env.root.display()),
            "no cairn environment at {}",
            env.root.display()
        ))
    }
}

/// Makes `dir` absolute against the current directory.
pub fn absolute(dir: &Path) -> Result<PathBuf> {
    std::path::absolute(dir).into_diagnostic()
}

impl Environment {
    /// Reads and validates the manifest.
    pub fn load_manifest(&self) -> Result<cairn_manifest::Manifest> {
        cairn_manifest::Manifest::load(&self.manifest_path()).map_err(miette::Report::new)
    }

    /// Reads the lock, or explains that there is none yet.
    pub fn load_lock(&self) -> Result<cairn_manifest::Lock> {
        let path = self.lock_path();
        if !path.is_file() {
            return Err(miette!(
                help = "add packages with `cairn install PKG`",
                "the environment has no lock yet ({} is missing)",
                path.display()
            ));
        }
        let text = fs_err::read_to_string(&path).into_diagnostic()?;
        cairn_manifest::Lock::parse(&path, &text).map_err(miette::Report::new)
    }

    /// Writes the manifest text (when given) and the lock, each atomically.
    /// Callers do all fallible work first, so a failure leaves both files as they were.
    pub fn save(&self, manifest_text: Option<&str>, lock: &cairn_manifest::Lock) -> Result<()> {
        let lock_text = lock.to_toml();
        if let Some(text) = manifest_text {
            cairn_store::write_atomic(self.manifest_path(), |f| {
                std::io::Write::write_all(f, text.as_bytes())
            })
            .into_diagnostic()?;
        }
        cairn_store::write_atomic(self.lock_path(), |f| {
            std::io::Write::write_all(f, lock_text.as_bytes())
        })
        .into_diagnostic()
    }
}
