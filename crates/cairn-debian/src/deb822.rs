//! deb822 control-file paragraphs (`Packages`, `Release`, `control`).
