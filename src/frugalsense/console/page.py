"""The console's one HTML page: every screen is a section, shown by the script as the address's #fragment
changes. Every control has a label; everything is reachable by Tab and works with Enter or Space."""

from __future__ import annotations

from frugalsense.console.prices import TEXTRACT_EXPENSE_PER_PAGE, TEXTRACT_FORMS_PER_PAGE

__all__ = ["PAGE"]

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>frugalsense console</title>
<link rel="stylesheet" href="/console/static/console.css?v={version}">
<script src="/console/static/console.js?v={version}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
  <h1>frugalsense</h1>
  <nav aria-label="Screens" id="nav" hidden>
    <a href="#analyze">Analyze</a>
    <a href="#documents">Documents</a>
    <a href="#people">People</a>
    <a href="#search">Search</a>
    <a href="#costs">Costs</a>
    <a href="#keys" data-admin>Keys</a>
  </nav>
  <div id="who" hidden><span id="who-text"></span>
    <button type="button" id="sign-out">Sign out</button></div>
</header>
<main id="main" tabindex="-1">
<p id="status" role="status" aria-live="polite"></p>

<section id="screen-signin" hidden>
  <h2>Sign in</h2>
  <form id="signin-form">
    <label for="signin-key">API key</label>
    <input id="signin-key" name="key" type="password" autocomplete="current-password" required>
    <button type="submit">Sign in</button>
  </form>
  <p class="hint">Ask your admin for a key, or make one with <code>frugalsense keys create</code>.</p>
</section>

<section id="screen-analyze" hidden>
  <h2>Analyze a file</h2>
  <form id="analyze-form">
    <div class="drop" id="analyze-drop">
      <label for="analyze-file">Photo, scan, PDF, audio or video (or drop it here)</label>
      <input id="analyze-file" name="file" type="file" required>
    </div>
    <fieldset><legend>Features (none ticked: chosen by the kind of file)</legend>
      <label><input type="checkbox" name="features" value="faces"> faces</label>
      <label><input type="checkbox" name="features" value="labels"> labels</label>
      <label><input type="checkbox" name="features" value="moderation"> moderation</label>
      <label><input type="checkbox" name="features" value="text"> text</label>
      <label><input type="checkbox" name="features" value="speech"> speech</label>
    </fieldset>
    <label for="analyze-collection">Name faces against</label>
    <select id="analyze-collection" data-collections><option value="">(do not name faces)</option></select>
    <button type="submit">Analyze</button>
  </form>
  <div id="analyze-result" aria-live="polite"></div>
</section>

<section id="screen-documents" hidden data-price-fields="{price_fields}" data-price-forms="{price_forms}">
  <h2>Read a receipt, invoice or form</h2>
  <form id="documents-form">
    <div class="drop" id="documents-drop">
      <label for="documents-file">Photo, scan or PDF (or drop it here)</label>
      <input id="documents-file" name="file" type="file" accept="image/*,application/pdf" required>
    </div>
    <fieldset><legend>What is it?</legend>
      <label><input type="radio" name="kind" value="receipt" checked> a receipt or invoice</label>
      <label><input type="radio" name="kind" value="form"> a form (questions and answers)</label>
    </fieldset>
    <button type="submit">Read</button>
  </form>
  <div id="documents-result" aria-live="polite"></div>
</section>

<section id="screen-people" hidden>
  <h2>People</h2>
  <div class="row">
    <label for="people-collection">Collection</label>
    <select id="people-collection" data-collections></select>
    <form id="collection-form" class="inline">
      <label for="collection-name">New collection</label>
      <input id="collection-name" required maxlength="200">
      <button type="submit">Create collection</button>
    </form>
  </div>
  <h3>Persons</h3>
  <div class="row">
    <form id="person-form" class="inline">
      <label for="person-name">New person</label>
      <input id="person-name" required maxlength="200">
      <label for="person-photo">from a photo (optional)</label>
      <input id="person-photo" type="file" accept="image/*">
      <button type="submit">Add person</button>
    </form>
    <label for="person-filter">Find by name</label>
    <input id="person-filter" type="search" maxlength="200">
  </div>
  <ul id="persons" class="cards" aria-label="Persons"></ul>
  <div class="pager" id="persons-pager"></div>
  <h3>Identify a photo</h3>
  <form id="identify-form" class="inline">
    <label for="identify-file">Photo</label>
    <input id="identify-file" type="file" accept="image/*" required>
    <button type="submit">Identify</button>
  </form>
  <div id="identify-result" aria-live="polite"></div>
  <h3>Recurring unknown faces</h3>
  <ul id="clusters" class="cards" aria-label="Clusters of unknown faces"></ul>
  <div class="pager" id="clusters-pager"></div>
  <h3>Search back through faces seen</h3>
  <form id="facesearch-form" class="inline">
    <label for="facesearch-file">Photo of a face</label>
    <input id="facesearch-file" type="file" accept="image/*" required>
    <button type="submit">Search faces</button>
  </form>
  <ul id="facesearch-result" class="cards" aria-label="Faces found"></ul>
  <dialog id="confirm-delete" aria-labelledby="confirm-title">
    <form method="dialog">
      <h3 id="confirm-title">Delete this person?</h3>
      <p id="confirm-text"></p>
      <button value="cancel" type="submit">Keep</button>
      <button value="delete" type="submit" id="confirm-yes">Delete for good</button>
    </form>
  </dialog>
</section>

<section id="screen-search" hidden>
  <h2>Search</h2>
  <form id="search-form">
    <label for="search-q">Words or meaning</label>
    <input id="search-q" type="search" maxlength="1000">
    <details><summary>Filters</summary>
      <label for="search-person">Person (name or id)</label><input id="search-person" maxlength="200">
      <label for="search-label">Labels (comma-separated)</label><input id="search-label" maxlength="500">
      <label for="search-kind">Kind</label>
      <select id="search-kind"><option value="">any</option><option>image</option><option>document</option>
        <option>audio</option><option>video</option></select>
      <label for="search-since">From</label><input id="search-since" type="date">
      <label for="search-until">Until</label><input id="search-until" type="date">
      <label><input id="search-safe" type="checkbox"> leave out what moderation flagged</label>
    </details>
    <button type="submit">Search</button>
  </form>
  <form id="searchimage-form" class="inline">
    <label for="searchimage-file">Search by an example picture</label>
    <input id="searchimage-file" type="file" accept="image/*" required>
    <button type="submit">Find similar</button>
  </form>
  <ol id="search-result" class="hits" aria-label="Results"></ol>
  <button type="button" id="duplicates">Show near-duplicate groups</button>
  <div id="duplicates-result"></div>
  <h3>Index files</h3>
  <form id="index-form" class="inline">
    <label for="index-files">Files or a folder</label>
    <input id="index-files" type="file" multiple webkitdirectory>
    <label for="index-more">or single files</label>
    <input id="index-more" type="file" multiple>
    <button type="submit">Index</button>
    <progress id="index-progress" max="1" value="0" aria-label="Indexing progress"></progress>
    <span id="index-count"></span>
  </form>
</section>

<section id="screen-costs" hidden>
  <h2>Costs</h2>
  <form id="costs-form" class="inline">
    <label for="costs-since">From</label><input id="costs-since" type="date">
    <label for="costs-until">Until</label><input id="costs-until" type="date">
    <button type="submit">Show</button>
  </form>
  <div id="costs-chart" role="img" aria-label="CPU-seconds per day"></div>
  <table id="costs-totals" aria-label="Totals"></table>
  <table id="costs-table" aria-label="Per day and feature"></table>
</section>

<section id="screen-keys" hidden>
  <h2>API keys</h2>
  <form id="key-form" class="inline">
    <label for="key-name">Name</label><input id="key-name" required maxlength="200">
    <label for="key-role">Role</label>
    <select id="key-role"><option value="user">user</option><option value="admin">admin</option></select>
    <button type="submit">Create key</button>
  </form>
  <p id="key-secret" role="alert"></p>
  <table id="keys-table" aria-label="Keys"></table>
</section>
</main>
</body>
</html>
"""
# Amazon Textract's list prices per page, for the Documents screen to set beside a call's own cost
PAGE = PAGE.replace("{price_fields}", str(TEXTRACT_EXPENSE_PER_PAGE)).replace(
    "{price_forms}", str(TEXTRACT_FORMS_PER_PAGE)
)
